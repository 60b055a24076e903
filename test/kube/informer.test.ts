// The informer against the fake API server: initial sync, handlers, resume, 410 relist,
// dropped streams, the server away for a while, a resource the server does not serve.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Informer, KubeClient, KubeMetrics, loadKubeconfig, RESOURCES, WatchHeaderTimeout, type Resource, type V1Node, type V1Pod } from "../../src/kube/index.ts";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { until } from "../helpers/until.ts";

let api: FakeApiServer;
let client: KubeClient;
const running: Informer<any>[] = [];

beforeAll(() => {
  api = FakeApiServer.start({ bookmarkIntervalMs: 200 });
  client = new KubeClient(loadKubeconfig(api.writeKubeconfig()), { backoff: { initialMs: 20, maxMs: 200 } });
});
afterEach(async () => {
  for (const i of running.splice(0)) await i.stop();
});
afterAll(() => api.close());

function start<T extends object>(r: Resource, opts: ConstructorParameters<typeof Informer<T>>[2] = {}) {
  const log: string[] = [];
  const inf = new Informer<T & { metadata?: { name?: string } }>(client, r, { backoff: { initialMs: 20, maxMs: 200 }, ...opts } as never);
  inf.on({
    add: (o) => log.push(`add ${o.metadata?.name}`),
    update: (_, o) => log.push(`update ${o.metadata?.name}`),
    delete: (o) => log.push(`delete ${o.metadata?.name}`),
  });
  running.push(inf);
  inf.start();
  return { inf, log };
}

const names = (inf: Informer<any>) => inf.list().map((o) => o.metadata.name).sort();

describe("informer", () => {
  test("initial list sets synced, then watch events reach the cache and handlers; bookmarks advance the resourceVersion", async () => {
    api.put("nodes", { metadata: { name: "a" } });
    api.put("nodes", { metadata: { name: "b" } });
    const metrics = new KubeMetrics("t");
    const { inf, log } = start<V1Node>(RESOURCES.nodes, { metrics });
    expect(inf.synced).toBe(false);
    await inf.waitForSync();
    expect(inf.synced).toBe(true);
    expect(names(inf)).toEqual(["a", "b"]);
    api.put("nodes", { metadata: { name: "c" } });
    api.put("nodes", { metadata: { name: "a", labels: { x: "1" } } });
    api.remove("nodes", "b");
    await until("watch events applied", () => log.length === 5);
    expect(log).toEqual(["add a", "add b", "add c", "update a", "delete b"]);
    expect(names(inf)).toEqual(["a", "c"]);
    api.put("pods", { metadata: { name: "unrelated", namespace: "x" } });
    await until("bookmark carries the newer resourceVersion", () => inf.resourceVersion === String(api.resourceVersion));
    expect(await metrics.render()).toMatch(/t_objects\{kind="Node"\} 2/);
    expect(await metrics.render()).toMatch(/t_last_sync_timestamp_seconds\{kind="Node"\} \d+/);
  });

  test("a dropped stream reconnects from the last resourceVersion: nothing missed, nothing listed again", async () => {
    const { inf, log } = start<V1Node>(RESOURCES.nodes);
    await inf.waitForSync();
    const lists = () => api.requests.filter((r) => r.path === "/api/v1/nodes" && !r.query.watch).length;
    const listsBefore = lists();
    const watchesBefore = api.watchCount;
    log.length = 0;
    api.dropWatches("nodes");
    api.put("nodes", { metadata: { name: "during-drop" } });
    await until("reconnected and caught up", () => log.includes("add during-drop"));
    expect(api.watchCount).toBeGreaterThan(watchesBefore);
    expect(lists()).toBe(listsBefore);
    const resumed = api.requests.filter((r) => r.query.watch && r.path === "/api/v1/nodes").at(-1)!;
    expect(Number(resumed.query.resourceVersion)).toBeGreaterThan(0);
  });

  test("410 Gone: relists, and the handlers get the difference (deletes missed while away included)", async () => {
    api.put("nodes", { metadata: { name: "stay" } });
    api.put("nodes", { metadata: { name: "go" } });
    const metrics = new KubeMetrics("t");
    const { inf, log } = start<V1Node>(RESOURCES.nodes, { metrics });
    await inf.waitForSync();
    log.length = 0;
    // The informer is cut off while things change, and the server forgets that history.
    api.stop();
    api.remove("nodes", "go");
    api.put("nodes", { metadata: { name: "new" } });
    api.put("nodes", { metadata: { name: "stay", labels: { v: "2" } } });
    api.compact();
    api.start();
    await until("relisted", () => log.includes("delete go") && log.includes("add new") && log.includes("update stay"));
    expect(names(inf)).not.toContain("go");
    expect(names(inf)).toContain("new");
    expect(await metrics.render()).toMatch(/t_watch_restarts_total\{kind="Node",reason="expired"\} [1-9]/);
  });

  test("API server down for a while: the cache is kept, and it catches up when the server is back", async () => {
    const { inf, log } = start<V1Node>(RESOURCES.nodes);
    await inf.waitForSync();
    const before = names(inf);
    api.stop();
    await Bun.sleep(1500);
    expect(names(inf)).toEqual(before);
    expect(inf.lastError).toBeDefined();
    api.put("nodes", { metadata: { name: "after-outage" } });
    api.start();
    await until("caught up", () => log.includes("add after-outage"));
    expect(inf.lastError).toBeUndefined();
  });

  test("a watch the server closes at once with nothing on it is watched again after a growing backoff, not in a loop; not an error", async () => {
    const notes: string[] = [];
    // "At once" is within 10 s here: a loaded machine may take over a second to answer.
    const { inf, log } = start<V1Node>(RESOURCES.nodes, { shortWatchMs: 10_000, log: { warn: (m: string) => notes.push(m), info: (m: string) => notes.push(m) } });
    await inf.waitForSync();
    const watches = api.watchCount;
    api.closeWatchesAtOnce({ count: 5, match: (_, path) => path === "/api/v1/nodes" });
    api.dropWatches("nodes");
    await until("five watches closed at once, and a sixth open", () => api.watchCount >= watches + 6 && api.openWatches > 0);
    const delays = notes.flatMap((m) => /watch closed at once .* watching again in (\d+) ms/.exec(m)?.[1] ?? []).map(Number);
    expect(delays.length).toBeGreaterThanOrEqual(5);
    // The informer's backoff (20 ms doubling, up to 200 ms): its choice, not a measured time.
    expect(delays.at(-1)!).toBeGreaterThan(delays[0]!);
    expect(inf.lastError).toBeUndefined();
    api.put("nodes", { metadata: { name: "after-short-watches" } });
    await until("watched again: changes arrive", () => log.includes("add after-short-watches"));
  });

  test("a watch answered 410 (not in the stream) relists at once and is not a failure: no 'failing' for the handlers", async () => {
    const { inf, log } = start<V1Node>(RESOURCES.nodes);
    const heard: string[] = [];
    inf.on({ failing: () => heard.push("failing"), recovered: () => heard.push("recovered") });
    await inf.waitForSync();
    const lists = () => api.requests.filter((r) => r.path === "/api/v1/nodes" && !r.query.watch && r.status === 200).length;
    const before = lists();
    api.fail({ status: 410, match: (m, path, q) => m === "GET" && path === "/api/v1/nodes" && !!q.get("watch") });
    api.dropWatches("nodes");
    api.put("nodes", { metadata: { name: "after-410" } });
    await until("relisted", () => lists() > before && log.includes("add after-410"));
    expect(heard).toEqual([]);
    expect(inf.lastError).toBeUndefined();
  });

  test("transform trims objects before they are stored", async () => {
    api.put("pods", { metadata: { name: "fat", namespace: "t", annotations: { big: "x".repeat(1000) } }, spec: { nodeName: "n1", containers: [{ name: "c", image: "i" }] }, status: { podIP: "10.0.0.5" } });
    const { inf } = start<V1Pod>(RESOURCES.pods, { namespace: "t", transform: (p: V1Pod) => ({ metadata: { name: p.metadata?.name, namespace: p.metadata?.namespace, resourceVersion: p.metadata?.resourceVersion }, spec: { nodeName: p.spec?.nodeName, containers: [] }, status: { podIP: p.status?.podIP } }) });
    await inf.waitForSync();
    expect(inf.get("t/fat")).toEqual({ metadata: { name: "fat", namespace: "t", resourceVersion: expect.any(String) }, spec: { nodeName: "n1", containers: [] }, status: { podIP: "10.0.0.5" } });
  });

  test("a resource the server does not serve (404): reported once, retried slowly, picked up when it appears", async () => {
    api.hidden.add("networkpolicies");
    const warnings: string[] = [];
    const metrics = new KubeMetrics("t");
    const { inf, log } = start(RESOURCES.networkPolicies, { missingRetryMs: 300, metrics, log: { warn: (m: string) => warnings.push(m), info: () => {} } });
    const asked = () => api.requests.filter((r) => r.path === "/apis/networking.k8s.io/v1/networkpolicies").length;
    await until("looked for twice", () => asked() >= 2);
    await Bun.sleep(300);
    // Slow retries (every missingRetryMs), not a loop: a handful of requests, one warning.
    expect(asked()).toBeLessThan(8);
    expect(warnings.filter((w) => w.includes("404")).length).toBe(1);
    expect(inf.synced).toBe(false);
    expect(await metrics.render()).toMatch(/t_resource_missing\{kind="NetworkPolicy"\} 1/);
    api.put("networkpolicies", { metadata: { name: "np", namespace: "d" } });
    api.hidden.delete("networkpolicies");
    await until("synced once served", () => inf.synced && log.includes("add np"));
    expect(await metrics.render()).not.toMatch(/t_resource_missing\{kind="NetworkPolicy"\} 1/);
  });

  test("a resource removed from the server while watched: reported once, not retried in a loop", async () => {
    api.put("networkpolicies", { metadata: { name: "np2", namespace: "e" } });
    const warnings: string[] = [];
    const { inf } = start(RESOURCES.networkPolicies, { missingRetryMs: 400, log: { warn: (m: string) => warnings.push(m), info: () => {} } });
    await inf.waitForSync();
    const asked = () => api.requests.filter((r) => r.path === "/apis/networking.k8s.io/v1/networkpolicies").length;
    api.hidden.add("networkpolicies");
    api.dropWatches("networkpolicies");
    await until("reported missing", () => warnings.some((w) => w.includes("404")));
    const n = asked();
    await Bun.sleep(1000);
    expect(asked() - n).toBeLessThan(5);
    expect(warnings.filter((w) => w.includes("404")).length).toBe(1);
    api.hidden.delete("networkpolicies");
  });
});

describe("informer on hung watches", () => {
  test("a watch answered but then silent is given up after the idle timeout and watched again: later changes arrive", async () => {
    const c = new KubeClient(loadKubeconfig(api.writeKubeconfig()), { watchIdleTimeoutMs: 1000 });
    const metrics = new KubeMetrics("h");
    const inf = new Informer<V1Node>(c, RESOURCES.nodes, { backoff: { initialMs: 20, maxMs: 200 }, metrics });
    const log: string[] = [];
    inf.on({ add: (o) => log.push(`add ${o.metadata?.name}`) });
    try {
      inf.start();
      await inf.waitForSync();
      // The next watch hangs after its headers (bookmarks come every 200 ms on a live one).
      api.hang({ when: "after-headers", match: (_m, p, q) => p === "/api/v1/nodes" && q.get("watch") === "1" });
      api.dropWatches("nodes");
      await until("the hung watch taken", () => api.hangingNow === 1 || log.length > 0);
      api.put("nodes", { metadata: { name: "after-hang" } });
      await until("the change seen through a new watch", () => log.includes("add after-hang"));
      expect(await metrics.render()).toMatch(/h_watch_restarts_total\{kind="Node",reason="idle"\} [1-9]/);
    } finally {
      await inf.stop();
    }
  }, 60_000);

  test("a watch whose answer never comes is an error after the header timeout (the cache is stale, not silently old), then watched again", async () => {
    const c = new KubeClient(loadKubeconfig(api.writeKubeconfig()), { watchHeaderTimeoutMs: 1000 });
    const inf = new Informer<V1Node>(c, RESOURCES.nodes, { backoff: { initialMs: 20, maxMs: 200 } });
    const log: string[] = [];
    inf.on({ add: (o) => log.push(`add ${o.metadata?.name}`) });
    try {
      inf.start();
      await inf.waitForSync();
      api.hang({ when: "before-headers", match: (_m, p, q) => p === "/api/v1/nodes" && q.get("watch") === "1" });
      api.dropWatches("nodes");
      await until("the hang reported as the last error", () => inf.lastError instanceof WatchHeaderTimeout);
      api.put("nodes", { metadata: { name: "after-header-hang" } });
      await until("the change seen through a new watch", () => log.includes("add after-header-hang"));
      expect(inf.lastError).toBeUndefined();
    } finally {
      await inf.stop();
    }
  }, 60_000);
});

describe("informer errors", () => {
  test("a watch resumed after an outage clears the last error at once, without waiting for an event or a bookmark", async () => {
    // Bookmarks a minute apart, as a real API server sends them: none arrives during the test.
    const quiet = FakeApiServer.start({ bookmarkIntervalMs: 60_000 });
    const c = new KubeClient(loadKubeconfig(quiet.writeKubeconfig()), { attempts: 1 });
    const inf = new Informer<V1Node>(c, RESOURCES.nodes, { backoff: { initialMs: 20, maxMs: 200 } });
    try {
      quiet.put("nodes", { metadata: { name: "a" } });
      inf.start();
      await inf.waitForSync();
      quiet.stop();
      await until("the failure seen", () => inf.lastError !== undefined);
      quiet.start();
      await until("the watch open again", () => quiet.openWatches === 1);
      await until("the error cleared", () => inf.lastError === undefined);
      expect(names(inf)).toEqual(["a"]);
    } finally {
      await inf.stop();
      quiet.close();
    }
  }, 60_000);

  test("handlers hear once when the watch starts failing and once when it succeeds again, with no object changed", async () => {
    const quiet = FakeApiServer.start({ bookmarkIntervalMs: 60_000 });
    const c = new KubeClient(loadKubeconfig(quiet.writeKubeconfig()), { attempts: 1 });
    let errors = 0;
    const metrics = { watchRestart: (_: string, why: string) => void (why === "error" && errors++), listed() {}, objects() {}, missing() {} };
    const inf = new Informer<V1Node>(c, RESOURCES.nodes, { backoff: { initialMs: 20, maxMs: 100 }, metrics });
    const heard: string[] = [];
    inf.on({ failing: (e) => heard.push(`failing: ${e instanceof Error}`), recovered: () => heard.push("recovered"), add: (o) => heard.push(`add ${o.metadata?.name}`) });
    try {
      quiet.put("nodes", { metadata: { name: "a" } });
      inf.start();
      await inf.waitForSync();
      expect(heard).toEqual(["add a"]);
      quiet.stop();
      // Retried several times (20-100 ms apart) against the stopped server: still one "failing".
      await until("three failed tries", () => errors >= 3);
      expect(heard).toEqual(["add a", "failing: true"]);
      quiet.start();
      await until("recovered", () => heard.includes("recovered"));
      expect(heard).toEqual(["add a", "failing: true", "recovered"]);
      expect(inf.lastError).toBeUndefined();
    } finally {
      await inf.stop();
      quiet.close();
    }
  }, 60_000);
});
