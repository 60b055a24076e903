// `mncni controller --endpoint-slices` (compiled) against the lab API server with the
// controller's token under deploy/'s RBAC: it follows Services and Pods as they change and
// writes their EndpointSlices (ready / serving / terminating, per family, named target ports
// resolved per pod), repairs a slice someone else changed or deleted, deletes the slices of a
// Service that went; without the flag it writes none. No request of its is refused.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import type { Obj } from "../../src/lab/apiserver/kinds.ts";
import { requireBinary } from "../helpers/binary.ts";
import { until } from "../helpers/until.ts";

const dir = mkdtempSync("/tmp/mncni-ctl-eps-");
const refused: string[] = [];
/** Every write of an EndpointSlice the server accepted, by the writer's user agent (mncni-controller/<identity>). */
const sliceWrites: string[] = [];
const api = new ApiServer({
  dir, bookmarkIntervalMs: 500,
  done: (req, url, _body, r) => {
    if (r.code === 403) refused.push(`${req.method} ${url.pathname}: ${r.body.message}`);
    if (req.method !== "GET" && url.pathname.includes("/endpointslices") && r.code < 300) sliceWrites.push(req.headers.get("user-agent") ?? "");
  },
}).listen();
const procs: Subprocess[] = [];

afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  api.stop();
  rmSync(dir, { recursive: true, force: true });
});

function controller(name: string, extra: string[]): Subprocess {
  const proc = Bun.spawn([requireBinary(), "controller", "--kubeconfig", api.writeKubeconfig("controller"), "--metrics-addr", "off", "--log-file", join(dir, `${name}.log`), "--cluster-cidr", "10.244.0.0/16", ...extra], { stdout: "ignore", stderr: "ignore" });
  procs.push(proc);
  return proc;
}

const READY = [{ type: "Ready", status: "True" }];
function pod(name: string, labels: Record<string, string>, ips: string[], o: { ready?: boolean; node?: string; ports?: object[] } = {}): Obj {
  return {
    metadata: { name, namespace: "apps", labels },
    spec: { nodeName: o.node ?? "node1", containers: [{ name: "c", ports: o.ports ?? [] }] },
    status: { phase: "Running", podIP: ips[0], podIPs: ips.map((ip) => ({ ip })), conditions: o.ready === false ? [{ type: "Ready", status: "False" }] : READY },
  };
}
const service = (name: string, selector: Record<string, string>, ports: object[]): Obj => ({ metadata: { name, namespace: "apps" }, spec: { selector, ports, clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20"] } });

/** A Service's slices as stored: name -> [address, ready, serving, terminating, ports] rows. */
function slices(svc: string): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const sl of api.store.list("endpointslices").filter((o) => o.metadata?.labels?.["kubernetes.io/service-name"] === svc)) {
    out[sl.metadata!.name] = (sl.endpoints ?? []).map((e: any) => [e.addresses[0], e.conditions.ready, e.conditions.serving, e.conditions.terminating, (sl.ports ?? []).map((p: any) => `${p.name}:${p.port}`).join(",")]).sort();
  }
  return out;
}
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

describe("the endpoint-slice controller", () => {
  test("off without --endpoint-slices: the controller writes no slice", async () => {
    for (const ns of ["default", "kube-system", "apps"]) api.put("namespaces", { metadata: { name: ns } });
    api.put("pods", pod("off1", { app: "off" }, ["10.244.0.9"]));
    api.put("services", service("off", { app: "off" }, [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }]));
    const p = controller("off", []);
    // It is up (it gave the Node a pod CIDR) and wrote nothing.
    api.put("nodes", { metadata: { name: "node1" } });
    await until("the controller is up (node1 has a pod CIDR)", () => !!api.store.get("nodes", "node1")?.spec?.podCIDRs?.length, 30_000);
    expect(slices("off")).toEqual({});
    p.kill("SIGTERM");
    await p.exited;
  }, 60_000);

  test("Services and Pods as they change: slices written, updated, repaired and deleted", async () => {
    controller("on", ["--endpoint-slices"]);
    const want = async (what: string, svc: string, expected: Record<string, unknown[]>) => {
      await until(what, () => same(slices(svc), expected), 30_000).catch((e) => {
        throw new Error(`${(e as Error).message}: have ${JSON.stringify(slices(svc))}`);
      });
    };
    // The Service that existed before the controller started, and one made now; a dual-stack
    // pod, a pod not ready yet, a pod of another label, a named target port resolved per pod.
    await want("the slice of a Service that was there before the controller", "off", { "off-ipv4": [["10.244.0.9", true, true, false, "http:8080"]] });
    api.put("pods", pod("a", { app: "web" }, ["10.244.0.2", "fd00:244::2"], { ports: [{ name: "web", containerPort: 8080, protocol: "TCP" }] }));
    api.put("pods", pod("b", { app: "web" }, ["10.244.1.2"], { ready: false, node: "node2", ports: [{ name: "web", containerPort: 9090, protocol: "TCP" }] }));
    api.put("pods", pod("c", { app: "db" }, ["10.244.1.3"]));
    api.put("services", service("web", { app: "web" }, [{ name: "http", port: 80, targetPort: "web", protocol: "TCP" }]));
    await want("web's slices: one per family and target port", "web", {
      "web-ipv4": [["10.244.0.2", true, true, false, "http:8080"]],
      "web-ipv4-1": [["10.244.1.2", false, false, false, "http:9090"]],
      "web-ipv6": [["fd00:244::2", true, true, false, "http:8080"]],
    });
    // b gets ready; c gets the label.
    api.put("pods", pod("b", { app: "web" }, ["10.244.1.2"], { node: "node2", ports: [{ name: "web", containerPort: 9090, protocol: "TCP" }] }));
    api.put("pods", pod("c", { app: "web" }, ["10.244.1.3"]));
    // c has no port named web: an endpoint with no ports, in a slice of its own (as upstream).
    await want("b ready, c selected", "web", {
      "web-ipv4": [["10.244.0.2", true, true, false, "http:8080"]],
      "web-ipv4-1": [["10.244.1.2", true, true, false, "http:9090"]],
      "web-ipv4-2": [["10.244.1.3", true, true, false, ""]],
      "web-ipv6": [["fd00:244::2", true, true, false, "http:8080"]],
    });
    // a is being deleted (its grace period): terminating, still serving, not ready.
    const a = api.store.get("pods", "apps/a")!;
    api.put("pods", { ...a, metadata: { ...a.metadata, deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["x"] } });
    await want("a terminating", "web", {
      "web-ipv4": [["10.244.0.2", false, true, true, "http:8080"]],
      "web-ipv4-1": [["10.244.1.2", true, true, false, "http:9090"]],
      "web-ipv4-2": [["10.244.1.3", true, true, false, ""]],
      "web-ipv6": [["fd00:244::2", false, true, true, "http:8080"]],
    });
    api.remove("pods", "a", "apps");
    api.remove("pods", "c", "apps");
    // b stays in its slice (a change rewrites only the slices it touches); a's slice, empty, goes.
    await want("a and c gone", "web", { "web-ipv4-1": [["10.244.1.2", true, true, false, "http:9090"]] });
    // Someone else's edit of a managed slice is undone, a deleted one's endpoints come back: as
    // kube's controller, into a slice named anew (a slice left with none of its endpoints goes).
    const b = [["10.244.1.2", true, true, false, "http:9090"]];
    const onlyB = () => Object.values(slices("web")).length === 1 && same(Object.values(slices("web"))[0], b);
    const sl = api.store.get("endpointslices", "apps/web-ipv4-1")!;
    api.put("endpointslices", { ...sl, endpoints: [] });
    await until("the edited slice's endpoint back", () => !same(slices("web")["web-ipv4-1"], []) && onlyB(), 30_000);
    const uids = () => api.store.list("endpointslices").filter((o) => o.metadata?.labels?.["kubernetes.io/service-name"] === "web").map((o) => o.metadata!.uid);
    const [gone] = uids();
    const [name] = Object.keys(slices("web"));
    api.remove("endpointslices", name!, "apps");
    await until("the deleted slice's endpoint back (a slice made anew)", () => !uids().includes(gone) && onlyB(), 30_000);
    // The Service goes: its slices too.
    api.remove("services", "web", "apps");
    await want("web's slices deleted", "web", {});
    expect(refused).toEqual([]);
  }, 90_000);

  test("two replicas with leader election: only the leader writes; killed, the other takes over and follows the Pods", async () => {
    // The controller of the test above is stopped first: its Lease-less writes would mix in.
    for (const p of procs.splice(0)) {
      p.kill("SIGKILL");
      await p.exited;
    }
    const LE = ["--endpoint-slices", "--leader-elect", "--lease-namespace", "kube-system", "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"];
    const one = controller("le-one", [...LE, "--identity", "le-one"]);
    const two = controller("le-two", [...LE, "--identity", "le-two"]);
    const holder = () => api.store.get("leases", "kube-system/mncni-controller")?.spec?.holderIdentity as string | undefined;
    api.put("pods", pod("d", { app: "le" }, ["10.244.2.2"]));
    api.put("services", service("le", { app: "le" }, [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }]));
    await until("the leader writes le's slice", () => same(slices("le"), { "le-ipv4": [["10.244.2.2", true, true, false, "http:8080"]] }), 30_000);
    const leader = holder()!;
    expect(["le-one", "le-two"]).toContain(leader);
    const standby = leader === "le-one" ? "le-two" : "le-one";
    expect(sliceWrites.filter((w) => w.includes(standby))).toEqual([]);
    (leader === "le-one" ? one : two).kill("SIGKILL");
    api.put("pods", pod("e", { app: "le" }, ["10.244.2.3"]));
    await until("the other replica holds the Lease", () => holder() === standby, 30_000);
    await until("the new leader adds e", () => same(slices("le"), { "le-ipv4": [["10.244.2.2", true, true, false, "http:8080"], ["10.244.2.3", true, true, false, "http:8080"]] }), 30_000);
    expect(sliceWrites.some((w) => w.includes(standby))).toBe(true);
    expect(refused).toEqual([]);
  }, 90_000);
});
