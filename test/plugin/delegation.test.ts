// IPAM across the CNI protocol, both ways: mncni delegating to the Go reference host-local
// (ipam.type "host-local"), and the Go reference bridge using mncni-ipam (the same
// executable, found as "mncni-ipam" in CNI_PATH). Configs use cniVersion 1.0.0, the
// newest the reference plugins (1.1.1) speak.
import { afterAll, describe, expect, test } from "bun:test";
import { unlinkSync } from "node:fs";
import { run } from "../helpers/netns.ts";
import {
  addrs,
  destroyAllNodes,
  DUAL_RANGES,
  hostVeths,
  link,
  links,
  ping,
  plain,
  reservations,
  reservedFor,
  TestNode,
  V4_DEFAULT,
  V6_DEFAULT,
} from "./fixture.ts";

afterAll(destroyAllNodes);

const ROUTES = [V4_DEFAULT, V6_DEFAULT];

describe("mncni with ipam.type host-local", () => {
  const hostLocalConf = (node: TestNode) =>
    node.conf({ cniVersion: "1.0.0", ipam: { type: "host-local", ranges: DUAL_RANGES, routes: ROUTES } });

  test("ADD, CHECK and DEL go through host-local's reservations", () => {
    const node = new TestNode();
    const conf = hostLocalConf(node);
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "hl1" });
    const have = addrs(pod, "eth0").sort();
    expect(res.ips.map((i: any) => i.address).sort()).toEqual(have);
    expect(have).toHaveLength(2);
    expect(res.ips.every((i: any) => i.interface === 2)).toBe(true);
    // host-local wrote these files (its format: "<id>\r\n<ifname>").
    expect(reservedFor(node.dataDir, "hl1").sort()).toEqual(have.map(plain).sort());
    for (const a of have) expect(ping(node.ns, plain(a))).toBe(true);

    const ok = node.check(conf, res, { pod, id: "hl1" });
    expect(ok.stdout + ok.stderr).toBe("");
    expect(ok.code).toBe(0);

    const del = node.del(conf, { pod, id: "hl1" });
    expect(del.code).toBe(0);
    expect(reservations(node.dataDir).size).toBe(0);
    expect(hostVeths(node.ns)).toEqual([]);
    expect(link(pod, "eth0")).toBeUndefined();
    expect(node.del(conf, { pod, id: "hl1" }).code).toBe(0);
  });

  test("CHECK is forwarded: host-local's complaint about a lost reservation fails it", () => {
    const node = new TestNode();
    const conf = hostLocalConf(node);
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "hl2" });
    for (const a of reservedFor(node.dataDir, "hl2")) unlinkSync(`${node.dataDir}/mnbnet/${a}`);
    const r = node.check(conf, res, { pod, id: "hl2" });
    expect(r.code).not.toBe(0);
    expect(r.json?.msg).toMatch(/hl2/);
  });

  test("an ADD failing after IPAM ADD calls IPAM DEL: host-local's reservation is released", () => {
    const node = new TestNode();
    const conf = hostLocalConf(node);
    const pod = node.pod();
    // The bridge name is taken by a veth: ADD fails in the host step, after IPAM ADD.
    run(["ip", "-n", node.ns, "link", "add", "cbr0", "type", "veth", "peer", "name", "cbr0peer"]);
    const r = node.call("ADD", conf, { pod, id: "hl3" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/cannot use "cbr0" as bridge/);
    // host-local did reserve (it keeps its round-robin marker) but holds no address now.
    expect(reservations(node.dataDir).size).toBe(0);
    expect(run(["ls", `${node.dataDir}/mnbnet`]).stdout).toMatch(/last_reserved_ip/);
    expect(hostVeths(node.ns)).toEqual([]);
    expect(links(pod).map((l) => l.ifname)).toEqual(["lo"]);
  });
});

describe("reference bridge with mncni-ipam", () => {
  test("ADD, CHECK and DEL through mncni-ipam", () => {
    const node = new TestNode();
    const conf = node.conf({
      cniVersion: "1.0.0",
      type: "bridge",
      ranges: DUAL_RANGES,
      routes: ROUTES,
      extra: { bridge: "mnbref0", isGateway: true },
    });
    const [a, b] = [node.pod(), node.pod()];
    const ra = node.add(conf, { pod: a, id: "ref1" });
    const rb = node.add(conf, { pod: b, id: "ref2" });
    expect(ra.cniVersion).toBe("1.0.0");
    const haveA = addrs(a, "eth0").sort();
    expect(ra.ips.map((i: any) => i.address).sort()).toEqual(haveA);
    expect(haveA.map((x) => x.endsWith("/24") || x.endsWith("/64"))).toEqual([true, true]);
    // mncni-ipam's reservations, keyed by container ID and ifname.
    expect(reservedFor(node.dataDir, "ref1").sort()).toEqual(haveA.map(plain).sort());
    expect(reservedFor(node.dataDir, "ref2")).toHaveLength(2);
    expect(addrs(node.ns, "mnbref0")).toEqual(expect.arrayContaining(["10.244.1.1/24", "fd00:10:244:1::1/64"]));
    for (const ip of rb.ips) expect(ping(a, plain(ip.address))).toBe(true);
    expect(ping(node.ns, plain(haveA[0]!))).toBe(true);

    const ok = node.check(conf, ra, { pod: a, id: "ref1" });
    expect(ok.stdout).toBe("");
    expect(ok.code).toBe(0);

    // The reference bridge's CHECK asks mncni-ipam, which notices a lost reservation.
    unlinkSync(`${node.dataDir}/mnbnet/${plain(rb.ips[0].address)}`);
    const bad = node.check(conf, rb, { pod: b, id: "ref2" });
    expect(bad.code).not.toBe(0);
    expect(bad.json?.msg).toMatch(/IP reservation/);

    for (const [pod, id] of [[a, "ref1"], [b, "ref2"]] as const) {
      expect(node.del(conf, { pod, id }).code).toBe(0);
      expect(reservedFor(node.dataDir, id)).toEqual([]);
      expect(link(pod, "eth0")).toBeUndefined();
    }
    expect(reservations(node.dataDir).size).toBe(0);
    // The invocation log shows the IPAM really ran as mncni-ipam.
    expect(run(["cat", node.logFile]).stdout).toMatch(/"plugin":"mncni-ipam"/);
  });
});
