// `mncni controller` as shipped, against the fake API server: what it writes is checked in
// the server's objects and request log (every accepted patch), what it reports in its Events
// and /metrics.
import { afterEach, describe, expect, test } from "bun:test";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { until } from "../helpers/until.ts";
import { acceptedAssignments, ControllerProcess, controllerManifests, doubleAssignments, podCIDRs } from "./fixture.ts";
import { cidrContains } from "../../src/net/cidr.ts";

const servers: FakeApiServer[] = [];
const procs: ControllerProcess[] = [];

function server(): FakeApiServer {
  const s = FakeApiServer.start({ bookmarkIntervalMs: 500, rbacManifests: controllerManifests() });
  servers.push(s);
  return s;
}

function controller(api: FakeApiServer, args: string[], name?: string): ControllerProcess {
  const c = ControllerProcess.start(api, args, name);
  procs.push(c);
  return c;
}

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop("SIGKILL");
  for (const s of servers.splice(0)) s.close();
});

const DUAL = ["--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56"];
const allAssigned = (api: FakeApiServer) => () => Object.values(podCIDRs(api)).every((c) => c.length > 0);
const eventsFor = (api: FakeApiServer, reason: string) => api.objects("events").filter((e) => e.reason === reason);
const alive = (c: ControllerProcess) => c.proc.exitCode === null && c.proc.signalCode === null;

describe("mncni controller", () => {
  test("dual-stack: every Node without podCIDRs gets one per family, none already in use; new Nodes too", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "old" }, spec: { podCIDR: "10.244.0.0/24", podCIDRs: ["10.244.0.0/24", "fd00:10:244::/64"] } });
    for (const n of ["n1", "n2", "n3"]) api.put("nodes", { metadata: { name: n } });
    const c = controller(api, DUAL);
    await until("initial Nodes assigned", allAssigned(api));
    api.put("nodes", { metadata: { name: "late" } });
    await until("late Node assigned", allAssigned(api));
    const got = podCIDRs(api);
    expect(got.old).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    for (const n of ["n1", "n2", "n3", "late"]) {
      const [a, b] = got[n]!;
      expect(cidrContains("10.244.0.0/16", a!) && a!.endsWith("/24")).toBe(true);
      expect(cidrContains("fd00:10:244::/56", b!) && b!.endsWith("/64")).toBe(true);
      expect(api.getObject("nodes", n)!.spec.podCIDR).toBe(a);
    }
    const all = Object.values(got).flat();
    expect(new Set(all).size).toBe(all.length);
    expect(acceptedAssignments(api).length).toBe(8);
    expect(api.podCIDRConflicts).toEqual([]);
    expect(await c.metric("mncni_controller_allocations_total")).toBe(4);
    expect(await c.metric("mncni_controller_cidrs_allocated", '{family="ipv4",cluster_cidr="10.244.0.0/16"}')).toBe(5);
    expect(await c.metric("mncni_controller_leader")).toBe(1);
    expect((await fetch(`http://127.0.0.1:${c.port}/readyz`)).status).toBe(200);
  }, 30_000);

  test("a restart rebuilds the map from the Nodes and hands nothing out twice", async () => {
    const api = server();
    for (const n of ["a", "b", "c"]) api.put("nodes", { metadata: { name: n } });
    const first = controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("first run assigned", allAssigned(api));
    expect(await first.stop("SIGTERM")).toBe(0);
    const before = podCIDRs(api);
    for (const n of ["d", "e"]) api.put("nodes", { metadata: { name: n } });
    controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("second run assigned", allAssigned(api));
    const after = podCIDRs(api);
    for (const n of ["a", "b", "c"]) expect(after[n]).toEqual(before[n]!);
    const all = Object.values(after).flat();
    expect(new Set(all).size).toBe(5);
    // Nodes that had CIDRs were never patched again.
    expect(acceptedAssignments(api).map(([n]) => n).sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(doubleAssignments(api)).toEqual([]);
    expect(api.podCIDRConflicts).toEqual([]);
  }, 30_000);

  test("exhaustion is an Event and a metric, not a crash; a deleted Node's CIDR goes to the one waiting", async () => {
    const api = server();
    for (const n of ["a", "b"]) api.put("nodes", { metadata: { name: n } });
    const c = controller(api, ["--cluster-cidr", "10.0.0.0/23", "--node-cidr-mask-size-ipv4", "24"]);
    await until("a and b assigned", allAssigned(api));
    api.put("nodes", { metadata: { name: "c" } });
    await until("exhaustion reported", async () => eventsFor(api, "CIDRNotAvailable").length > 0 && (await c.metric("mncni_controller_nodes_waiting")) === 1);
    const ev = eventsFor(api, "CIDRNotAvailable")[0]!;
    expect([ev.type, ev.involvedObject.kind, ev.involvedObject.name, ev.metadata!.namespace]).toEqual(["Warning", "Node", "c", "default"]);
    expect(ev.message).toMatch(/no free pod CIDR for Node "c" in 10.0.0.0\/23 \(2\/2 used\)/);
    expect(await c.metric("mncni_controller_exhausted_total")).toBeGreaterThanOrEqual(1);
    expect(podCIDRs(api).c).toEqual([]);
    expect(alive(c)).toBe(true);
    const freed = podCIDRs(api).a![0]!;
    api.remove("nodes", "a");
    await until("c gets a's CIDR", () => podCIDRs(api).c!.length > 0);
    expect(podCIDRs(api).c).toEqual([freed]);
    expect(await c.metric("mncni_controller_releases_total")).toBe(1);
    expect(await c.metric("mncni_controller_nodes_waiting")).toBe(0);
    expect(api.podCIDRConflicts).toEqual([]);
    // Reported once, not on every retry.
    expect(eventsFor(api, "CIDRNotAvailable").length).toBe(1);
  }, 30_000);

  test("Nodes with CIDRs outside the cluster CIDR or overlapping another's: reported once, left alone, their CIDRs never handed out", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "outside" }, spec: { podCIDR: "192.168.7.0/24", podCIDRs: ["192.168.7.0/24"] } });
    api.put("nodes", { metadata: { name: "x1" }, spec: { podCIDR: "10.244.0.0/24", podCIDRs: ["10.244.0.0/24"] } });
    api.put("nodes", { metadata: { name: "x2" }, spec: { podCIDR: "10.244.0.0/24", podCIDRs: ["10.244.0.0/24"] } });
    api.put("nodes", { metadata: { name: "wide" }, spec: { podCIDR: "10.244.0.0/23", podCIDRs: ["10.244.0.0/23"] } });
    for (const n of ["n1", "n2"]) api.put("nodes", { metadata: { name: n } });
    const c = controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("n1 and n2 assigned", allAssigned(api));
    await until("problems reported", async () => (await c.metric("mncni_controller_nodes_rejected", '{reason="overlap"}')) === 2 && (await c.metric("mncni_controller_nodes_rejected", '{reason="outside"}')) === 1);
    await until("events posted", () => eventsFor(api, "CIDROverlap").length === 2 && eventsFor(api, "CIDROutsideClusterCIDR").length === 1);
    expect(eventsFor(api, "CIDROutsideClusterCIDR")[0]!.involvedObject.name).toBe("outside");
    // The list comes sorted by name: "wide" is adopted first (10.244.0.0/23 is inside the
    // cluster CIDR, it holds two node subnets); x1 and x2 overlap it.
    expect(eventsFor(api, "CIDROverlap").map((e) => e.involvedObject.name).sort()).toEqual(["x1", "x2"]);
    expect(eventsFor(api, "CIDROverlap")[0]!.message).toMatch(/pod CIDR "10.244.0.0\/24" of Node "x\d" overlaps another Node's; Node left alone/);
    for (const n of ["n1", "n2"]) expect(cidrContains("10.244.0.0/23", podCIDRs(api)[n]![0]!)).toBe(false);
    expect(api.requestsTo("PATCH", "/api/v1/nodes/").map((r) => r.path.split("/")[4]).sort()).toEqual(["n1", "n2"]);
    // Another update of a refused Node is not a new report.
    api.put("nodes", { metadata: { name: "outside", labels: { touched: "yes" } }, spec: { podCIDR: "192.168.7.0/24", podCIDRs: ["192.168.7.0/24"] } });
    api.put("nodes", { metadata: { name: "n3" } });
    await until("n3 assigned", allAssigned(api));
    expect(eventsFor(api, "CIDROutsideClusterCIDR").length).toBe(1);
    // The Node they overlapped goes away: one of them is counted as holding its CIDR now.
    api.remove("nodes", "wide");
    await until("x2 adopted", async () => (await c.metric("mncni_controller_nodes_rejected", '{reason="overlap"}')) === 1);
  }, 30_000);

  test("relists after 410 Gone: Nodes added and removed while it was cut off are handled", async () => {
    const api = server();
    for (const n of ["a", "b"]) api.put("nodes", { metadata: { name: n } });
    const c = controller(api, ["--cluster-cidr", "10.244.0.0/16", "--node-cidr-mask-size-ipv4", "24"]);
    await until("assigned", allAssigned(api));
    api.stop();
    api.remove("nodes", "b");
    api.put("nodes", { metadata: { name: "c" } });
    api.compact();
    api.start();
    await until("c assigned after relist", allAssigned(api));
    expect(await c.metric("mncni_controller_watch_restarts_total", '{kind="Node",reason="expired"}')).toBeGreaterThanOrEqual(1);
    expect(await c.metric("mncni_controller_releases_total")).toBe(1);
    expect(podCIDRs(api).c![0]).not.toBe(podCIDRs(api).a![0]);
    expect(api.podCIDRConflicts).toEqual([]);
  }, 30_000);

  test("reconnects after a dropped watch stream, resuming without a relist", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "a" } });
    const c = controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("assigned", allAssigned(api));
    await until("watching", () => api.openWatches === 1);
    const watches = api.watchCount;
    const lists = api.requests.filter((r) => r.path === "/api/v1/nodes" && !r.query.watch).length;
    expect(api.dropWatches("nodes")).toBe(1);
    api.put("nodes", { metadata: { name: "b" } });
    await until("b assigned", allAssigned(api));
    expect(api.watchCount).toBeGreaterThan(watches);
    expect(api.requests.filter((r) => r.path === "/api/v1/nodes" && !r.query.watch).length).toBe(lists);
    expect(await c.metric("mncni_controller_watch_restarts_total", '{kind="Node",reason="closed"}')).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("API server down for a while, 429s and 500s: the controller waits, then carries on", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "a" } });
    const c = controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("assigned", allAssigned(api));
    api.stop();
    api.put("nodes", { metadata: { name: "b" } });
    await Bun.sleep(3000);
    expect(alive(c)).toBe(true);
    expect(podCIDRs(api).b).toEqual([]);
    api.fail({ status: 429, retryAfterSeconds: 1, count: 1, match: (m, p) => m === "PATCH" && p === "/api/v1/nodes/b" });
    api.fail({ status: 500, count: 2, match: (m, p) => m === "PATCH" && p === "/api/v1/nodes/b" });
    api.start();
    await until("b assigned once the server is back", allAssigned(api));
    expect(api.requestsTo("PATCH", "/api/v1/nodes/b").map((r) => r.status)).toEqual([429, 500, 500, 200]);
    expect(await c.metric("mncni_controller_api_retries_total", '{method="PATCH"}')).toBe(3);
    expect(alive(c)).toBe(true);
  }, 30_000);

  test("a patch that fails past the client's retries is tried again later, and counted", async () => {
    const api = server();
    api.fail({ status: 500, count: 7, match: (m, p) => m === "PATCH" && p === "/api/v1/nodes/stubborn" });
    api.put("nodes", { metadata: { name: "stubborn" } });
    const c = controller(api, ["--cluster-cidr", "10.244.0.0/16"]);
    await until("assigned in the end", allAssigned(api));
    const statuses = api.requestsTo("PATCH", "/api/v1/nodes/stubborn").map((r) => r.status);
    expect(statuses).toEqual([500, 500, 500, 500, 500, 500, 500, 200]);
    expect(await c.metric("mncni_controller_patch_errors_total")).toBe(1);
    expect(await c.metric("mncni_controller_cidrs_allocated", '{family="ipv4",cluster_cidr="10.244.0.0/16"}')).toBe(1);
    expect(api.podCIDRConflicts).toEqual([]);
  }, 30_000);

  test("bad flags: exit 2 with the flag named; an unreadable kubeconfig: exit 1 with the path", async () => {
    const p = Bun.spawnSync([ControllerProcess.binary(), "controller", "--cluster-cidr", "10.0.0.0/16", "--node-cidr-mask-size-ipv4", "8"], { stderr: "pipe" });
    expect(p.exitCode).toBe(2);
    expect(p.stderr.toString()).toMatch(/--node-cidr-mask-size-ipv4 "8"/);
    const q = Bun.spawnSync([ControllerProcess.binary(), "controller", "--cluster-cidr", "10.0.0.0/16", "--kubeconfig", "/nonexistent/kubeconfig", "--metrics-addr", "off"], { stderr: "pipe" });
    expect(q.exitCode).toBe(1);
    expect(JSON.parse(q.stderr.toString().trim().split("\n").at(-1)!).msg).toMatch(/cannot read kubeconfig "\/nonexistent\/kubeconfig"/);
  }, 30_000);
});
