// Bridge mode DEL, CHECK, STATUS and GC through the compiled plugin, each outcome checked
// against the kernel (ip -j, nft) and the IPAM files rather than the plugin's word.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { unlinkSync } from "node:fs";
import { run } from "../helpers/netns.ts";
import {
  addrs,
  antiSpoofVeths,
  destroyAllNodes,
  hostVethOf,
  link,
  plain,
  reservations,
  reservedFor,
  TestNode,
  V4_DEFAULT,
} from "./fixture.ts";

afterAll(destroyAllNodes);

const ip = (ns: string, ...args: string[]) => run(["ip", "-n", ns, ...args]);

/** What a finished DEL must leave of one attachment: nothing. */
function expectGone(node: TestNode, id: string, pod?: string): void {
  expect(hostVethOf(node.ns, "mnbnet", id)).toBeUndefined();
  expect(reservedFor(node.dataDir, id)).toEqual([]);
  if (pod) expect(link(pod, "eth0")).toBeUndefined();
}

describe("bridge DEL", () => {
  let node: TestNode;
  let conf: Record<string, any>;
  beforeAll(() => {
    node = new TestNode();
    conf = node.conf();
  });

  test("releases the addresses, removes the host veth and its anti-spoofing state; a second DEL succeeds", () => {
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "twice" });
    const veth = hostVethOf(node.ns, "mnbnet", "twice")!;
    expect(reservedFor(node.dataDir, "twice")).toHaveLength(2);
    expect(antiSpoofVeths(node.ns)).toContain(veth.ifname);
    const first = node.del({ ...conf, prevResult: res }, { pod, id: "twice" });
    expect(first.code).toBe(0);
    expect(first.stdout).toBe("");
    expectGone(node, "twice", pod);
    expect(antiSpoofVeths(node.ns)).not.toContain(veth.ifname);
    expect(node.del(conf, { pod, id: "twice" }).code).toBe(0);
    expectGone(node, "twice", pod);
  });

  test("works without CNI_NETNS and without prevResult", () => {
    const pod = node.pod();
    node.add(conf, { pod, id: "nonetns" });
    const r = node.del(conf, { id: "nonetns" });
    expect(r.code).toBe(0);
    expectGone(node, "nonetns", pod);
    expect(node.del(conf, { pod: "", id: "nonetns" }).code).toBe(0);
  });

  test("works when the pod namespace was deleted first", () => {
    const pod = node.pod();
    node.add(conf, { pod, id: "podgone" });
    node.deletePod(pod);
    const r = node.del(conf, { pod, id: "podgone" });
    expect(r.code).toBe(0);
    expectGone(node, "podgone");
  });

  test("of one attachment leaves the others alone", () => {
    const [a, b] = [node.pod(), node.pod()];
    node.add(conf, { pod: a, id: "keep" });
    node.add(conf, { pod: b, id: "drop" });
    expect(node.del(conf, { pod: b, id: "drop" }).code).toBe(0);
    expectGone(node, "drop", b);
    expect(hostVethOf(node.ns, "mnbnet", "keep")).toBeDefined();
    expect(reservedFor(node.dataDir, "keep")).toHaveLength(2);
    expect(addrs(a, "eth0")).toHaveLength(2);
  });
});

describe("bridge CHECK", () => {
  let node: TestNode;
  let conf: Record<string, any>;
  beforeAll(() => {
    node = new TestNode();
    conf = node.conf();
  });

  /** ADDs a pod and verifies that CHECK passes before the test breaks something. */
  function added(id: string) {
    const pod = node.pod();
    const res = node.add(conf, { pod, id });
    const ok = node.check(conf, res, { pod, id });
    expect(ok.stdout + ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const veth = hostVethOf(node.ns, "mnbnet", id)!.ifname;
    const v4 = res.ips.find((i: any) => !i.address.includes(":")).address as string;
    return { pod, res, veth, v4, check: () => node.check(conf, res, { pod, id }) };
  }

  function expectFails(r: { code: number; json: any }, msg: RegExp): void {
    expect(r.code).not.toBe(0);
    expect(r.json?.msg).toMatch(msg);
  }

  test("fails when a pod address is removed", () => {
    const p = added("noaddr");
    ip(p.pod, "addr", "del", p.v4, "dev", "eth0");
    expectFails(p.check(), new RegExp(`address ${p.v4.replaceAll(".", "\\.")} is missing`));
  });

  test("fails when the default route is removed", () => {
    const p = added("noroute");
    ip(p.pod, "-4", "route", "del", "default");
    expectFails(p.check(), /route 0\.0\.0\.0\/0 via 10\.244\.1\.1 is missing/);
  });

  test("fails when the host veth is detached from the bridge", () => {
    const p = added("detached");
    ip(node.ns, "link", "set", p.veth, "nomaster");
    expectFails(p.check(), new RegExp(`"${p.veth}" is not attached to bridge "cbr0"`));
  });

  test("fails when the host veth is gone (renamed away)", () => {
    const p = added("renamed");
    ip(node.ns, "link", "set", p.veth, "down");
    ip(node.ns, "link", "set", p.veth, "name", "mnbrenamed0");
    expectFails(p.check(), new RegExp(`host veth "${p.veth}" is missing`));
  });

  test("fails when the host veth is deleted (its pod end goes with it)", () => {
    const p = added("deleted");
    ip(node.ns, "link", "del", p.veth);
    expectFails(p.check(), /interface "eth0" is missing/);
  });

  test("fails when a reservation file is deleted", () => {
    const p = added("nofile");
    unlinkSync(`${node.dataDir}/mnbnet/${plain(p.v4)}`);
    expectFails(p.check(), /IP reservation/);
  });

  test("tolerates a route added by a later plugin", () => {
    const p = added("extraroute");
    ip(p.pod, "route", "add", "192.168.77.0/24", "via", "10.244.1.1");
    const r = p.check();
    expect(r.stdout).toBe("");
    expect(r.code).toBe(0);
  });

  test("needs prevResult", () => {
    const pod = node.pod();
    node.add(conf, { pod, id: "noprev" });
    const r = node.call("CHECK", conf, { pod, id: "noprev" });
    expect(r.code).not.toBe(0);
    expect(r.json?.msg).toMatch(/prevResult/);
  });
});

describe("bridge STATUS", () => {
  test("is ok on a working node", () => {
    const node = new TestNode();
    const r = node.call("STATUS", node.conf());
    expect(r.stdout).toBe("");
    expect(r.code).toBe(0);
  });

  test("answers code 50 only when every range of a range set is exhausted", () => {
    const node = new TestNode();
    // Two ranges of one address each (a /30 leaves one once its gateway is taken).
    const conf = node.conf({ ranges: [[{ subnet: "10.9.0.0/30" }, { subnet: "10.9.0.4/30" }]], routes: [V4_DEFAULT] });
    expect(node.call("STATUS", conf).code).toBe(0);
    node.add(conf, { pod: node.pod(), id: "first" });
    expect(node.call("STATUS", conf).code).toBe(0);
    const second = node.pod();
    node.add(conf, { pod: second, id: "second" });
    const full = node.call("STATUS", conf);
    expect(full.code).not.toBe(0);
    expect(full.json.code).toBe(50);
    expect(full.json.msg).toMatch(/no free address/);
    expect(node.del(conf, { pod: second, id: "second" }).code).toBe(0);
    expect(node.call("STATUS", conf).code).toBe(0);
  });

  test("answers code 50 when a non-bridge device holds the bridge name", () => {
    const node = new TestNode();
    ip(node.ns, "link", "add", "cbr0", "type", "veth", "peer", "name", "cbr0peer");
    const r = node.call("STATUS", node.conf());
    expect(r.json?.code).toBe(50);
    expect(r.json?.msg).toMatch(/cbr0/);
  });
});

describe("bridge GC", () => {
  test("releases the reservation and leftover host veth of an attachment that is not valid", () => {
    const node = new TestNode();
    const conf = node.conf();
    const [a, b] = [node.pod(), node.pod()];
    const ra = node.add(conf, { pod: a, id: "valid" });
    node.add(conf, { pod: b, id: "stale" });
    const staleVeth = hostVethOf(node.ns, "mnbnet", "stale")!.ifname;
    expect(reservedFor(node.dataDir, "stale")).toHaveLength(2);

    const r = node.call("GC", { ...conf, "cni.dev/valid-attachments": [{ containerID: "valid", ifname: "eth0" }] });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);

    expectGone(node, "stale", b);
    expect(antiSpoofVeths(node.ns)).not.toContain(staleVeth);
    expect([...reservations(node.dataDir).values()].every((c) => c.trim() === "valid\r\neth0")).toBe(true);
    expect(reservedFor(node.dataDir, "valid")).toHaveLength(2);
    expect(hostVethOf(node.ns, "mnbnet", "valid")?.master).toBe("cbr0");
    expect(node.check(conf, ra, { pod: a, id: "valid" }).code).toBe(0);
  });

  test("without cni.dev/valid-attachments is refused and removes nothing", () => {
    const node = new TestNode();
    const conf = node.conf();
    const pod = node.pod();
    node.add(conf, { pod, id: "kept" });
    const r = node.call("GC", conf);
    expect(r.code).not.toBe(0);
    expect(r.json?.code).toBe(7);
    expect(r.json?.msg).toContain("cni.dev/valid-attachments");
    expect(hostVethOf(node.ns, "mnbnet", "kept")).toBeDefined();
    expect(reservedFor(node.dataDir, "kept")).toHaveLength(2);
  });

  test("leaves attachments of other networks alone", () => {
    const node = new TestNode();
    const mine = node.conf();
    const other = node.conf({ name: "mnbother", ranges: [[{ subnet: "10.245.0.0/24" }]], routes: [V4_DEFAULT] });
    node.add(other, { pod: node.pod(), id: "theirs" });
    expect(node.call("GC", { ...mine, "cni.dev/valid-attachments": [] }).code).toBe(0);
    expect(hostVethOf(node.ns, "mnbother", "theirs")).toBeDefined();
    expect(reservedFor(node.dataDir, "theirs", "eth0", "mnbother")).toHaveLength(1);
  });
});
