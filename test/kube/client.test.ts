// The client against the fake API server over real HTTPS: TLS verified with the cluster CA,
// bearer auth, paging, retries, conflicts, patches, watch streams.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isConflict, KubeApiError, KubeClient, loadInCluster, loadKubeconfig, RESOURCES, WatchHeaderTimeout, type V1Lease, type V1Node } from "../../src/kube/index.ts";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";

let api: FakeApiServer;
let client: KubeClient;
const fast = { backoff: { initialMs: 10, maxMs: 100 } };

beforeAll(() => {
  api = FakeApiServer.start();
  client = new KubeClient(loadKubeconfig(api.writeKubeconfig()), fast);
});
afterAll(() => api.close());

describe("TLS and auth", () => {
  test("verifies the server certificate against the kubeconfig's CA (file and inline data)", async () => {
    api.put("namespaces", { metadata: { name: "tls" } });
    expect((await client.get(RESOURCES.namespaces, { name: "tls" })).metadata?.name).toBe("tls");
    const inline = new KubeClient(loadKubeconfig(api.writeKubeconfig(join(api.dir, "inline"), { inlineCA: true })));
    expect((await inline.get(RESOURCES.namespaces, { name: "tls" })).metadata?.name).toBe("tls");
  });

  test("refuses a server whose certificate another CA signed", async () => {
    // The server certificate as the CA: its issuer (the real CA) is then unknown.
    const cfg = { ...loadKubeconfig(api.writeKubeconfig()), ca: await Bun.file(api.server.certs.cert).text() };
    const bad = new KubeClient(cfg, { attempts: 1 });
    const e = await bad.get(RESOURCES.namespaces, { name: "tls" }).catch((x) => x);
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toMatch(/cannot GET "\/api\/v1\/namespaces\/tls": .*(certificate|verify|issuer)/i);
  });

  test("in-cluster config (service-account files) reaches the server", async () => {
    const cfg = loadInCluster({ dir: api.writeServiceAccountDir(), env: { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) } });
    expect(cfg.namespace).toBe("kube-system");
    const c = new KubeClient(cfg);
    expect((await c.get(RESOURCES.namespaces, { name: "tls" })).metadata?.name).toBe("tls");
  });

  test("a wrong token is 401, not retried", async () => {
    const c = new KubeClient(loadKubeconfig(api.writeKubeconfig(join(api.dir, "badtoken"), { token: "nope" })), fast);
    const before = api.requests.length;
    const e = await c.get(RESOURCES.namespaces, { name: "tls" }).catch((x) => x);
    expect(e).toBeInstanceOf(KubeApiError);
    expect((e as KubeApiError).status).toBe(401);
    expect(api.requests.length - before).toBe(1);
  });
});

describe("requests", () => {
  test("listAll follows continue tokens across pages", async () => {
    for (let i = 0; i < 23; i++) api.put("pods", { metadata: { name: `p${String(i).padStart(2, "0")}`, namespace: "paging" } });
    api.put("pods", { metadata: { name: "elsewhere", namespace: "other" } });
    const before = api.requests.length;
    const all = await client.listAll(RESOURCES.pods, { namespace: "paging", limit: 5 });
    expect(all.items.map((p) => p.metadata?.name)).toEqual(Array.from({ length: 23 }, (_, i) => `p${String(i).padStart(2, "0")}`));
    expect(Number(all.resourceVersion)).toBeGreaterThan(0);
    const pages = api.requests.slice(before);
    expect(pages.length).toBe(5);
    expect(pages.slice(1).every((r) => r.query.continue)).toBe(true);
  });

  test("429 with Retry-After and 500 are retried; a 404 is not", async () => {
    api.put("nodes", { metadata: { name: "retry" } });
    api.fail({ status: 429, retryAfterSeconds: 0, count: 2, match: (m, p) => p === "/api/v1/nodes/retry" });
    api.fail({ status: 500, count: 1, match: (m, p) => p === "/api/v1/nodes/retry" });
    const before = api.requests.length;
    const retried: number[] = [];
    const c = new KubeClient(client.config, { ...fast, onRetry: (i) => retried.push(i.attempt) });
    expect((await c.get<V1Node>(RESOURCES.nodes, { name: "retry" })).metadata?.name).toBe("retry");
    expect(api.requests.slice(before).map((r) => r.status)).toEqual([429, 429, 500, 200]);
    expect(retried).toEqual([1, 2, 3]);
    const e = await c.get(RESOURCES.nodes, { name: "absent" }).catch((x) => x);
    expect((e as KubeApiError).status).toBe(404);
    expect(e.message).toMatch(/cannot GET "\/api\/v1\/nodes\/absent": 404 NotFound/);
  });

  test("retries stop after the configured attempts", async () => {
    api.fail({ status: 503, count: 10, match: (m, p) => p === "/api/v1/nodes/retry" });
    const c = new KubeClient(client.config, { ...fast, attempts: 3 });
    const e = await c.get(RESOURCES.nodes, { name: "retry" }).catch((x) => x);
    expect((e as KubeApiError).status).toBe(503);
    api.fail({ status: 503, count: 0 });
  });

  test("a disconnect (server down) is retried until it is back", async () => {
    api.put("nodes", { metadata: { name: "down" } });
    api.stop();
    const c = new KubeClient(client.config, { backoff: { initialMs: 100, maxMs: 200 }, attempts: 50 });
    const got = c.get<V1Node>(RESOURCES.nodes, { name: "down" });
    await Bun.sleep(300);
    api.start();
    expect((await got).metadata?.name).toBe("down");
  });

  test("update with a stale resourceVersion: 409 Conflict surfaced", async () => {
    const lease = await client.create<V1Lease>(RESOURCES.leases, { namespace: "kube-system" }, { metadata: { name: "l1" }, spec: { holderIdentity: "a" } });
    const rv = lease.metadata!.resourceVersion;
    await client.update<V1Lease>(RESOURCES.leases, { namespace: "kube-system", name: "l1" }, { ...lease, spec: { holderIdentity: "b" } });
    const e = await client.update(RESOURCES.leases, { namespace: "kube-system", name: "l1" }, { ...lease, metadata: { ...lease.metadata, resourceVersion: rv }, spec: { holderIdentity: "c" } }).catch((x) => x);
    expect(isConflict(e)).toBe(true);
    const dup = await client.create(RESOURCES.leases, { namespace: "kube-system" }, { metadata: { name: "l1" } }).catch((x) => x);
    expect((dup as KubeApiError).status).toBe(409);
    expect(api.getObject("leases", "l1", "kube-system")?.spec.holderIdentity).toBe("b");
  });

  test("patches: merge and strategic on a Node; status only through the status subresource", async () => {
    api.put("nodes", { metadata: { name: "p1" }, status: { conditions: [{ type: "Ready", status: "True" }] } });
    await client.patch(RESOURCES.nodes, { name: "p1" }, { metadata: { labels: { a: "1" } } }, "merge");
    await client.patch(RESOURCES.nodes, { name: "p1" }, { spec: { podCIDR: "10.1.0.0/24", podCIDRs: ["10.1.0.0/24"] } }, "strategic");
    await client.patch(RESOURCES.nodes, { name: "p1" }, { status: { conditions: [{ type: "Ignored", status: "True" }] } }, "strategic");
    await client.patch(RESOURCES.nodes, { name: "p1", subresource: "status" }, { status: { conditions: [{ type: "NetworkUnavailable", status: "False", reason: "MncniIsUp" }] } }, "strategic");
    const n = api.getObject("nodes", "p1")!;
    expect(n.metadata!.labels).toEqual({ a: "1" });
    expect(n.spec.podCIDRs).toEqual(["10.1.0.0/24"]);
    expect(n.status.conditions.map((c: { type: string }) => c.type)).toEqual(["Ready", "NetworkUnavailable"]);
    // JSON patch: a test op guards the change.
    await client.patch(RESOURCES.nodes, { name: "p1" }, [{ op: "test", path: "/metadata/labels/a", value: "1" }, { op: "add", path: "/metadata/labels/b", value: "2" }], "json");
    expect(api.getObject("nodes", "p1")!.metadata!.labels).toEqual({ a: "1", b: "2" });
    const failed = await client.patch(RESOURCES.nodes, { name: "p1" }, [{ op: "test", path: "/metadata/labels/a", value: "9" }, { op: "remove", path: "/metadata/labels/b" }], "json").catch((x) => x);
    expect((failed as KubeApiError).status).toBe(422);
    expect(api.getObject("nodes", "p1")!.metadata!.labels).toEqual({ a: "1", b: "2" });
    // As the real API server: pod CIDRs are set once.
    const e = await client.patch(RESOURCES.nodes, { name: "p1" }, { spec: { podCIDR: "10.2.0.0/24", podCIDRs: ["10.2.0.0/24"] } }, "merge").catch((x) => x);
    expect((e as KubeApiError).status).toBe(422);
  });
});

describe("watch", () => {
  test("events as they happen, then bookmarks; ends when the server drops the stream", async () => {
    const { resourceVersion } = await client.listAll(RESOURCES.namespaces);
    const seen: string[] = [];
    const done = (async () => {
      for await (const ev of client.watch(RESOURCES.namespaces, { resourceVersion })) {
        seen.push(`${ev.type} ${ev.type === "ERROR" ? "" : ev.object.metadata?.name ?? ""}`.trim());
        if (ev.type === "BOOKMARK") api.dropWatches("namespaces");
      }
    })();
    await Bun.sleep(100);
    api.put("namespaces", { metadata: { name: "w1" } });
    api.put("namespaces", { metadata: { name: "w1", labels: { x: "y" } } });
    api.remove("namespaces", "w1");
    api.bookmark();
    await done;
    expect(seen).toEqual(["ADDED w1", "MODIFIED w1", "DELETED w1", "BOOKMARK"]);
    const req = api.requests.filter((r) => r.query.watch).at(-1)!;
    expect(req.query.allowWatchBookmarks).toBe("true");
    expect(req.query.resourceVersion).toBe(resourceVersion);
  });

  // Before these, each of the three hung forever: the caller's cache stale, with no error to show for it.
  const isWatch = (_m: string, _p: string, q: URLSearchParams) => q.get("watch") === "1";

  test("an answer that never comes (a request written into a connection nobody serves): an error after the header timeout", async () => {
    api.hang({ when: "before-headers", match: isWatch });
    const seen: unknown[] = [];
    const e = await (async () => {
      for await (const ev of client.watch(RESOURCES.namespaces, { headerTimeoutMs: 300 })) seen.push(ev);
    })().catch((x) => x);
    expect(e).toBeInstanceOf(WatchHeaderTimeout);
    expect((e as Error).message).toBe('cannot WATCH "/api/v1/namespaces": no answer within 300 ms');
    expect(seen).toEqual([]);
  });

  test("a stream on which nothing comes any more (no event, no bookmark): ended by the client after the idle timeout", async () => {
    api.hang({ when: "after-headers", match: isWatch });
    const expired: string[] = [];
    let opened = false;
    for await (const _ of client.watch(RESOURCES.namespaces, { idleTimeoutMs: 300, onOpen: () => (opened = true), onExpired: (why) => expired.push(why) })) {
      throw new Error("no event expected");
    }
    expect(opened).toBe(true);
    expect(expired).toEqual(["idle"]);
  });

  test("a stream the server does not end at timeoutSeconds: ended by the client a little after it", async () => {
    api.hang({ when: "after-headers", match: isWatch });
    const expired: string[] = [];
    for await (const _ of client.watch(RESOURCES.namespaces, { timeoutSeconds: 1, idleTimeoutMs: 60_000, onExpired: (why) => expired.push(why) })) {
      throw new Error("no event expected");
    }
    expect(expired).toEqual(["deadline"]);
    const req = api.requests.filter((r) => r.query.watch).at(-1)!;
    expect(req.query.timeoutSeconds).toBe("1");
  });

  test("a resourceVersion older than the server's history: an ERROR event with 410", async () => {
    const { resourceVersion } = await client.listAll(RESOURCES.namespaces);
    api.put("namespaces", { metadata: { name: "w2" } });
    api.compact();
    const evs = [];
    for await (const ev of client.watch(RESOURCES.namespaces, { resourceVersion })) evs.push(ev);
    expect(evs.length).toBe(1);
    expect(evs[0]!.type).toBe("ERROR");
    expect((evs[0]!.object as { code?: number }).code).toBe(410);
  });
});
