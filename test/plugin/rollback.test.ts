// ADD failures: the call fails with a CNI error that says what, and leaves the pod and the
// node as they were (no pod interface, no host veth, no reservation, no anti-spoofing state,
// in routed mode no host route). In bridge mode the bridge itself may stay: other pods may
// already be using it.
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { netnsPath, run } from "../helpers/netns.ts";
import {
  addrs,
  antiSpoofVeths,
  destroyAllNodes,
  hostVethOf,
  hostVeths,
  link,
  links,
  mncniRoutes,
  reservations,
  reservedFor,
  TestNode,
  V4_DEFAULT,
  V6_DEFAULT,
  type Mode,
} from "./fixture.ts";

afterEach(destroyAllNodes);

const ip = (ns: string, ...args: string[]) => run(["ip", "-n", ns, ...args]);

/**
 * The node holds no trace of any attachment (host veth, reservation, anti-spoofing element of
 * the mode's table, protocol-77 route); the pod has only what the test put there.
 */
function expectNothingLeft(node: TestNode, pod: string, o: { podLinks?: string[]; mode?: Mode } = {}): void {
  expect(hostVeths(node.ns)).toEqual([]);
  expect(reservations(node.dataDir).size).toBe(0);
  expect(antiSpoofVeths(node.ns, o.mode === "routed" ? "inet" : "bridge")).toEqual([]);
  expect(mncniRoutes(node.ns)).toEqual([]);
  expect(links(pod).map((l) => l.ifname).sort()).toEqual([...(o.podLinks ?? ["lo"])].sort());
}

describe("bridge ADD failure", () => {
  test("interface name already taken in the pod: error, the existing interface untouched, nothing reserved", () => {
    const node = new TestNode();
    const pod = node.pod();
    ip(pod, "link", "add", "eth0", "type", "veth", "peer", "name", "mnbpeer0");
    const before = link(pod, "eth0")!;
    const r = node.call("ADD", node.conf(), { pod, id: "taken" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/"eth0".*already exists/);
    expectNothingLeft(node, pod, { podLinks: ["lo", "eth0", "mnbpeer0"] });
    const after = link(pod, "eth0")!;
    expect(after.address).toBe(before.address);
    expect(after.linkinfo?.info_kind).toBe("veth");
    expect(addrs(pod, "eth0")).toEqual([]);
  });

  test("a host veth left by a killed ADD of the same attachment is replaced", () => {
    const node = new TestNode();
    const conf = node.conf();
    const first = node.pod();
    node.add(conf, { pod: first, id: "again" });
    const name = hostVethOf(node.ns, "mnbnet", "again")!.ifname;
    expect(node.del(conf, { pod: first, id: "again" }).code).toBe(0);
    // What an ADD killed after creating its veth leaves: the host end, its peer elsewhere.
    ip(node.ns, "link", "add", name, "type", "veth", "peer", "name", "mnbstale0");
    const pod = node.pod();
    node.add(conf, { pod, id: "again" });
    const veth = hostVethOf(node.ns, "mnbnet", "again")!;
    expect(veth.ifname).toBe(name);
    expect(veth.master).toBe("cbr0");
    expect(link(node.ns, "mnbstale0")).toBeUndefined(); // the old pair went with its host end
    expect(addrs(pod, "eth0")).toHaveLength(2);
  });

  test("pod namespace path missing: error naming CNI_NETNS, nothing created", () => {
    const node = new TestNode();
    const missing = netnsPath("mnb-no-such-ns");
    expect(existsSync(missing)).toBe(false);
    const r = node.call("ADD", node.conf(), { id: "nons", env: { CNI_NETNS: missing } });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toContain("CNI_NETNS");
    expect(r.json.msg).toContain(missing);
    expect(hostVeths(node.ns)).toEqual([]);
    expect(reservations(node.dataDir).size).toBe(0);
  });

  test("IPAM exhausted: the 3rd ADD on a 2-address range fails and leaves nothing of itself", () => {
    const node = new TestNode();
    // host-local semantics: a /30 holds a single pod address once network, gateway and
    // broadcast are excluded, so two /30 ranges make a two-address range set.
    const conf = node.conf({ ranges: [[{ subnet: "10.9.0.0/30" }, { subnet: "10.9.0.4/30" }]], routes: [V4_DEFAULT] });
    const [a, b, c] = [node.pod(), node.pod(), node.pod()];
    node.add(conf, { pod: a, id: "one" });
    node.add(conf, { pod: b, id: "two" });
    const veths = hostVeths(node.ns).map((l) => l.ifname).sort();
    const reserved = new Map(reservations(node.dataDir));
    expect([...reserved.keys()].sort()).toEqual(["10.9.0.2", "10.9.0.6"]);

    const r = node.call("ADD", conf, { pod: c, id: "three" });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toMatch(/no free address/);
    expect(links(c).map((l) => l.ifname)).toEqual(["lo"]);
    expect(hostVeths(node.ns).map((l) => l.ifname).sort()).toEqual(veths);
    expect(reservations(node.dataDir)).toEqual(reserved);
  });

  test("an existing non-bridge device named like the bridge: clear error, nothing left, the device untouched", () => {
    const node = new TestNode();
    const pod = node.pod();
    ip(node.ns, "link", "add", "cbr0", "type", "veth", "peer", "name", "cbr0peer");
    const r = node.call("ADD", node.conf(), { pod, id: "notabridge" });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toMatch(/cannot use "cbr0" as bridge: it exists and is a veth device/);
    expectNothingLeft(node, pod);
    expect(link(node.ns, "cbr0")!.linkinfo?.info_kind).toBe("veth");
    expect(addrs(node.ns, "cbr0")).toEqual([]);
  });

  test("a failure after the veth and addresses exist rolls all of it back", () => {
    const node = new TestNode();
    const pod = node.pod();
    // The second route's gateway is on no connected network: adding it fails only after
    // the reservation, the veth pair and the pod's addresses are in place.
    const conf = node.conf({ ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [V4_DEFAULT, { dst: "192.168.50.0/24", gw: "10.77.0.1" }] });
    const r = node.call("ADD", conf, { pod, id: "late" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/cannot add route "192\.168\.50\.0\/24" via 10\.77\.0\.1.*ENETUNREACH/);
    expectNothingLeft(node, pod);
    // The node is still usable: a correct ADD for the same pod succeeds afterwards.
    const ok = node.add(node.conf({ ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [V4_DEFAULT] }), { pod, id: "late" });
    expect(ok.ips).toHaveLength(1);
  });
});

describe("routed ADD failure", () => {
  test("a failure inside the pod, after the veth and its host routes exist, rolls all of it back", () => {
    const node = new TestNode();
    const pod = node.pod();
    const routes = [V4_DEFAULT, V6_DEFAULT, { dst: "192.168.50.0/24", gw: "10.77.0.1" }];
    const r = node.call("ADD", node.conf({ mode: "routed", routes }), { pod, id: "late" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/cannot add route "192\.168\.50\.0\/24" via 10\.77\.0\.1/);
    expectNothingLeft(node, pod, { mode: "routed" });
    const ok = node.add(node.conf({ mode: "routed" }), { pod, id: "late" });
    expect(ok.ips).toHaveLength(2);
    expect(mncniRoutes(node.ns)).toHaveLength(2);
  });

  test("a failure after the anti-spoofing elements exist (ipMasq cannot be set up) rolls them back too", async () => {
    const node = new TestNode();
    const pod = node.pod();
    // The network's masquerade table, owned by another process (nft's `owner` flag, as
    // firewalld uses it): the kernel refuses every change to it but its owner's (EPERM), so
    // mncni can neither fill nor replace it. The owner is an `nft -i` kept open for the test.
    const table = `mncni-masq-${createHash("sha256").update("mnbnet").digest("hex").slice(0, 8)}`;
    const owner = Bun.spawn(["ip", "netns", "exec", node.ns, "nft", "-i"], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
    try {
      owner.stdin.write(`add table inet ${table} { flags owner; }\n`);
      owner.stdin.flush();
      for (let i = 0; i < 200 && run(["ip", "netns", "exec", node.ns, "nft", "list", "table", "inet", table], { allowFail: true }).code !== 0; i++) Bun.sleepSync(10);
      expect(run(["ip", "netns", "exec", node.ns, "nft", "list", "table", "inet", table]).stdout).toContain("flags owner");
      const r = node.call("ADD", node.conf({ mode: "routed", extra: { ipMasq: true } }), { pod, id: "masqfail" });
      expect(r.code).not.toBe(0);
      expect(r.json.code).toBe(5);
      expect(r.json.msg).toContain("cannot set up masquerade for network \"mnbnet\"");
    } finally {
      owner.kill();
      await owner.exited;
    }
    expectNothingLeft(node, pod, { mode: "routed" });
    // The anti-spoofing table was created by this ADD and stays (empty): other pods would use it.
    expect(run(["ip", "netns", "exec", node.ns, "nft", "list", "table", "inet", "mncni-antispoof"], { allowFail: true }).code).toBe(0);
  });
});

// An ADD repeated without DEL, as after a server killed mid-ADD (issue 18, defect 9). Like the
// reference bridge and host-local plugins, mncni does not converge: the retry fails, says to
// DEL first, and leaves what is there alone; DEL then ADD gives a working pod (what runtimes
// do: containerd and CRI-O send DEL after a failed ADD).
describe("ADD retried without DEL", () => {
  test("with the pod's eth0, host veth and reservation left: code 4, DEL named, nothing touched; DEL then ADD works", () => {
    const node = new TestNode();
    const conf = node.conf();
    const pod = node.pod();
    const first = node.add(conf, { pod, id: "retry" });
    const veth = hostVethOf(node.ns, "mnbnet", "retry")!;
    const before = { eth0: link(pod, "eth0")!.address, addrs: addrs(pod, "eth0").sort(), reserved: reservedFor(node.dataDir, "retry").sort(), guard: antiSpoofVeths(node.ns) };

    const r = node.call("ADD", conf, { pod, id: "retry" });
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toContain(`cannot create interface "eth0" in "${netnsPath(pod)}": it already exists`);
    expect(r.json.msg).toContain("DEL it first");
    expect({ eth0: link(pod, "eth0")!.address, addrs: addrs(pod, "eth0").sort(), reserved: reservedFor(node.dataDir, "retry").sort(), guard: antiSpoofVeths(node.ns) }).toEqual(before);
    expect(hostVethOf(node.ns, "mnbnet", "retry")!.ifindex).toBe(veth.ifindex);
    expect(node.check(conf, first, { pod, id: "retry" }).code).toBe(0);

    expect(node.del(conf, { pod, id: "retry" }).code).toBe(0);
    const again = node.add(conf, { pod, id: "retry" });
    expect(node.check(conf, again, { pod, id: "retry" }).code).toBe(0);
    expect(reservedFor(node.dataDir, "retry")).toHaveLength(2);
  });

  test("with only the reservation left (killed before the veth): code 11, DEL named, no veth created; DEL then ADD works", () => {
    const node = new TestNode();
    const conf = node.conf();
    const pod = node.pod();
    node.add(conf, { pod, id: "retry" });
    // The pair goes with its pod end: what an ADD killed between IPAM and the veth leaves.
    run(["ip", "-n", pod, "link", "del", "eth0"]);
    const reserved = reservedFor(node.dataDir, "retry").sort();

    const r = node.call("ADD", conf, { pod, id: "retry" });
    expect(r.json.code).toBe(11);
    expect(r.json.msg).toContain("DEL it first");
    expect(hostVeths(node.ns)).toEqual([]);
    expect(link(pod, "eth0")).toBeUndefined();
    expect(reservedFor(node.dataDir, "retry").sort()).toEqual(reserved);

    expect(node.del(conf, { pod, id: "retry" }).code).toBe(0);
    const again = node.add(conf, { pod, id: "retry" });
    expect(node.check(conf, again, { pod, id: "retry" }).code).toBe(0);
    expect(reservedFor(node.dataDir, "retry")).toHaveLength(2);
    expect(antiSpoofVeths(node.ns)).toEqual([hostVethOf(node.ns, "mnbnet", "retry")!.ifname]);
  });
});

describe("bridge ADD config errors: nothing is created", () => {
  test("an unknown field: code 2 naming it", () => {
    const node = new TestNode();
    const pod = node.pod();
    const r = node.call("ADD", node.conf({ extra: { hairpinModes: true } }), { pod, id: "unknown" });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(2);
    expect(r.json.msg).toContain("hairpinModes");
    expectNothingLeft(node, pod);
    expect(link(node.ns, "cbr0")).toBeUndefined();
  });

  test("a bad mode: code 7 naming the field and value", () => {
    const node = new TestNode();
    const pod = node.pod();
    const r = node.call("ADD", node.conf({ extra: { mode: "vxlan" } }), { pod, id: "badmode" });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toMatch(/mode.*"vxlan"/);
    expectNothingLeft(node, pod);
    expect(link(node.ns, "cbr0")).toBeUndefined();
  });
});
