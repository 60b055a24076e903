// Plugin options other than the defaults, through the compiled plugin, each seen with an
// independent view (`ip -j -d link`, `ip -j addr`, the IPAM files): `mtu` and its limits,
// the `mac` and `ips` capabilities (runtimeConfig), `hairpinMode: false`, `promiscMode: true`.
import { afterAll, describe, expect, test } from "bun:test";
import { addrs, antiSpoofVeths, destroyAllNodes, hostVethOf, hostVeths, link, links, reservations, reservedFor, TestNode, type Mode } from "./fixture.ts";

afterAll(destroyAllNodes);

describe.each(["bridge", "routed"] as Mode[])("mtu, %s mode", (mode) => {
  test("9000 is the MTU of the pod's eth0 and the host veth (and a bridge mncni creates), and the Result says so", () => {
    const node = new TestNode();
    const conf = node.conf({ mode, extra: { mtu: 9000 } });
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "jumbo" });
    expect(link(pod, "eth0")!.mtu).toBe(9000);
    expect(hostVethOf(node.ns, "mnbnet", "jumbo")!.mtu).toBe(9000);
    if (mode === "bridge") expect(link(node.ns, "cbr0")!.mtu).toBe(9000);
    expect(res.interfaces.find((i: any) => i.name === "eth0").mtu).toBe(9000);
  });

  for (const mtu of [575, 65536, 1500.5, 0]) {
    test(`${mtu} is refused with code 7 naming mtu, and nothing is created`, () => {
      const node = new TestNode();
      const pod = node.pod();
      const r = node.call("ADD", node.conf({ mode, extra: { mtu } }), { pod, id: "badmtu" });
      expect(r.code).not.toBe(0);
      expect(r.json.code).toBe(7);
      expect(r.json.msg).toContain("mtu");
      expect(r.json.msg).toContain(String(mtu));
      expect(hostVeths(node.ns)).toEqual([]);
      expect(reservations(node.dataDir).size).toBe(0);
      expect(links(pod).map((l) => l.ifname)).toEqual(["lo"]);
    });
  }

  test("the limits themselves (576 and 65535) are accepted", () => {
    const node = new TestNode();
    for (const mtu of [576, 65535]) {
      const pod = node.pod();
      // 576 is below IPv6's minimum (1280): the kernel takes IPv6 off such a link, so IPv4 only.
      node.add(node.conf({ mode, name: `mtu${mtu}`, stack: "v4", extra: { mtu, bridge: `br${mtu}` } }), { pod, id: `mtu${mtu}` });
      expect(link(pod, "eth0")!.mtu).toBe(mtu);
    }
  });
});

describe.each(["bridge", "routed"] as Mode[])("capabilities through runtimeConfig, %s mode", (mode) => {
  test("mac and ips: the pod's eth0 has that MAC and those addresses, reserved for the container", () => {
    const node = new TestNode();
    const mac = "02:aa:bb:cc:dd:0e";
    const ips = ["10.244.1.77", "fd00:10:244:1::77"];
    const conf = node.conf({
      mode,
      extra: { capabilities: { mac: true, ips: true }, runtimeConfig: { mac: mac.toUpperCase(), ips: ips.map((ip) => `${ip}/${ip.includes(":") ? 64 : 24}`) } },
    });
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "caps" });
    expect(link(pod, "eth0")!.address).toBe(mac);
    expect(addrs(pod, "eth0").map((a) => a.split("/")[0]).sort()).toEqual([...ips].sort());
    expect(reservedFor(node.dataDir, "caps").sort()).toEqual([...ips].sort());
    expect(res.interfaces.find((i: any) => i.name === "eth0").mac).toBe(mac);
    expect(node.check(conf, res, { pod, id: "caps" }).code).toBe(0);
  });

  test("a malformed mac is refused with code 7 naming runtimeConfig.mac; nothing is created", () => {
    const node = new TestNode();
    const pod = node.pod();
    const r = node.call("ADD", node.conf({ mode, extra: { runtimeConfig: { mac: "02:aa:bb" } } }), { pod, id: "badmac" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain("runtimeConfig.mac");
    expect(hostVeths(node.ns)).toEqual([]);
    expect(reservations(node.dataDir).size).toBe(0);
  });

  test("an address already taken is refused, and the pod and node are left as they were", () => {
    const node = new TestNode();
    const conf = node.conf({ mode, stack: "v4", extra: { runtimeConfig: { ips: ["10.244.1.77/24"] } } });
    node.add(conf, { pod: node.pod(), id: "first" });
    const pod = node.pod();
    const r = node.call("ADD", conf, { pod, id: "second" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toContain("10.244.1.77");
    expect(reservedFor(node.dataDir, "second")).toEqual([]);
    expect(hostVethOf(node.ns, "mnbnet", "second")).toBeUndefined();
    expect(links(pod).map((l) => l.ifname)).toEqual(["lo"]);
    expect(antiSpoofVeths(node.ns, mode === "bridge" ? "bridge" : "inet")).toEqual([hostVethOf(node.ns, "mnbnet", "first")!.ifname]);
  });
});

describe("bridge port and bridge flags", () => {
  const hairpin = (node: TestNode, id: string) => hostVethOf(node.ns, "mnbnet", id)!.linkinfo?.info_slave_data?.hairpin;

  test("hairpinMode: false leaves hairpin off on the pod's bridge port; the default turns it on", () => {
    const node = new TestNode();
    node.add(node.conf({ extra: { hairpinMode: false } }), { pod: node.pod(), id: "nohairpin" });
    node.add(node.conf(), { pod: node.pod(), id: "hairpin" });
    expect(hairpin(node, "nohairpin")).toBe(false);
    expect(hairpin(node, "hairpin")).toBe(true);
  });

  test("promiscMode: true puts the bridge in promiscuous mode; the default does not", () => {
    const node = new TestNode();
    node.add(node.conf({ extra: { bridge: "cbrplain" } }), { pod: node.pod(), id: "plain" });
    node.add(node.conf({ name: "promnet", ranges: [[{ subnet: "10.245.0.0/24" }]], routes: [], extra: { bridge: "cbrprom", promiscMode: true } }), {
      pod: node.pod(),
      id: "prom",
    });
    expect(link(node.ns, "cbrprom")!.promiscuity).toBeGreaterThan(0);
    expect(link(node.ns, "cbrprom")!.flags).toContain("PROMISC");
    expect(link(node.ns, "cbrplain")!.promiscuity).toBe(0);
    expect(link(node.ns, "cbrplain")!.flags).not.toContain("PROMISC");
  });
});
