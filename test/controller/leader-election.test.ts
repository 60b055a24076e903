// Two `mncni controller --leader-elect` processes on one Lease: one leads, the other waits;
// the leader SIGKILLed mid-work, the other takes over after the lease duration; over every
// patch the server accepted, no CIDR was ever given to two Nodes.
import { afterEach, describe, expect, test } from "bun:test";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { until } from "../helpers/until.ts";
import { acceptedAssignments, ControllerProcess, controllerManifests, doubleAssignments, podCIDRs } from "./fixture.ts";

const servers: FakeApiServer[] = [];
const procs: ControllerProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) await p.stop("SIGKILL");
  for (const s of servers.splice(0)) s.close();
});

function server(): FakeApiServer {
  const s = FakeApiServer.start({ bookmarkIntervalMs: 500, rbacManifests: controllerManifests() });
  servers.push(s);
  return s;
}

function controller(api: FakeApiServer, name: string): ControllerProcess {
  const c = ControllerProcess.start(api, ARGS, name);
  procs.push(c);
  return c;
}

const ARGS = ["--cluster-cidr", "10.244.0.0/16,fd00:10:244::/56", "--leader-elect", "--lease-namespace", "kube-system", "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms"];
const allAssigned = (api: FakeApiServer) => () => Object.values(podCIDRs(api)).every((c) => c.length > 0);

describe("mncni controller --leader-elect", () => {
  test("one leader; SIGKILL of the leader: the other takes over, no CIDR handed out twice", async () => {
    const api = server();
    for (let i = 0; i < 20; i++) api.put("nodes", { metadata: { name: `a${i}` } });
    const [c1, c2] = [controller(api, "one"), controller(api, "two")];
    const leaderOf = async () => [(await c1.metric("mncni_controller_leader")) === 1, (await c2.metric("mncni_controller_leader")) === 1];
    await until("a leader", async () => (await leaderOf()).some(Boolean));
    await until("first Nodes assigned", allAssigned(api));
    // Exactly one leader, and the Lease names it; the standby has written no Node.
    const flags = await leaderOf();
    expect(flags.filter(Boolean).length).toBe(1);
    const [leader, standby] = flags[0] ? [c1, c2] : [c2, c1];
    const lease = api.getObject("leases", "mncni-controller", "kube-system")!;
    expect(lease.spec.holderIdentity).toBe(leader.identity);
    expect(lease.spec.leaseDurationSeconds).toBe(4);
    expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // Ready as a standby; on a loaded machine it may still be starting (the leader can be done first).
    await until("the standby answers /readyz with 200", async () => (await fetch(`http://127.0.0.1:${standby.port}/readyz`).catch(() => undefined))?.status === 200);
    const byStandby = () => api.requests.filter((r) => r.method === "PATCH" && r.userAgent?.includes(standby.identity));
    expect(byStandby()).toEqual([]);

    // Nodes keep coming while the leader dies without a word (no Lease release).
    for (let i = 0; i < 10; i++) api.put("nodes", { metadata: { name: `b${i}` } });
    expect(await leader.stop("SIGKILL")).not.toBe(0);
    for (let i = 0; i < 10; i++) api.put("nodes", { metadata: { name: `c${i}` } });
    await until("the standby leads", async () => (await standby.metric("mncni_controller_leader")) === 1);
    await until("every Node assigned", allAssigned(api));
    const after = api.getObject("leases", "mncni-controller", "kube-system")!;
    expect(after.spec.holderIdentity).toBe(standby.identity);
    expect(after.spec.leaseTransitions).toBe(1);
    expect(byStandby().length).toBeGreaterThan(0);

    const all = Object.values(podCIDRs(api)).flat();
    expect(all.length).toBe(80);
    expect(new Set(all).size).toBe(80);
    expect(doubleAssignments(api)).toEqual([]);
    expect(api.podCIDRConflicts).toEqual([]);
    // Every Node was patched once, by one of the two.
    expect(acceptedAssignments(api).length).toBe(80);
  }, 60_000);

  test("a candidate never takes a Lease renewed by someone else; SIGTERM hands it over at once", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "n" } });
    const c1 = controller(api, "first");
    await until("first leads", async () => (await c1.metric("mncni_controller_leader")) === 1);
    const c2 = controller(api, "second");
    // Longer than a lease duration: c1 renews, c2 keeps trying and keeps failing.
    await Bun.sleep(5000);
    expect(await c2.metric("mncni_controller_leader")).toBe(0);
    expect(api.requests.filter((r) => r.method === "PUT" && r.path.endsWith("/leases/mncni-controller") && r.userAgent?.includes(c2.identity))).toEqual([]);
    expect(await c1.stop("SIGTERM")).toBe(0);
    expect(api.getObject("leases", "mncni-controller", "kube-system")!.spec.holderIdentity).toBe("");
    await until("second leads", async () => (await c2.metric("mncni_controller_leader")) === 1, 10_000);
  }, 60_000);

  test("a leader that cannot renew within the renew deadline stops (exit 1) instead of writing on", async () => {
    const api = server();
    api.put("nodes", { metadata: { name: "n" } });
    const c = controller(api, "lonely");
    await until("leads", async () => (await c.metric("mncni_controller_leader")) === 1);
    api.stop();
    expect(await c.proc.exited).toBe(1);
    expect(c.logs().some((l) => l.level === "error" && /leadership lost/.test(l.msg))).toBe(true);
  }, 60_000);
});
