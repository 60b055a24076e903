// Bridge mode ADD through the compiled plugin, as a runtime calls it: IPv4, IPv6 and
// dual-stack, checked against the kernel (ip -j), the IPAM files and real pings, and the
// Result printed in every spec version.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { netnsPath } from "../helpers/netns.ts";
import {
  addrs,
  antiSpoofVeths,
  defaultRoute,
  destroyAllNodes,
  DUAL_RANGES,
  hostVethOf,
  hostVeths,
  link,
  ping,
  plain,
  reservations,
  reservedFor,
  sysctl,
  TestNode,
  V4_DEFAULT,
  V4_RANGES,
  V6_DEFAULT,
  V6_RANGES,
} from "./fixture.ts";

afterAll(destroyAllNodes);

const DNS = { nameservers: ["10.96.0.10"], search: ["default.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] };
const GATEWAY = { 4: "10.244.1.1", 6: "fd00:10:244:1::1" } as const;
const PREFIX_LEN = { 4: 24, 6: 64 } as const;
const FORWARDING = { 4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding" } as const;

const FAMILIES = [
  { label: "IPv4", ranges: V4_RANGES, routes: [V4_DEFAULT], families: [4] as const },
  { label: "IPv6", ranges: V6_RANGES, routes: [V6_DEFAULT], families: [6] as const },
  { label: "dual-stack", ranges: DUAL_RANGES, routes: [V4_DEFAULT, V6_DEFAULT], families: [4, 6] as const },
];

const familyOf = (a: string) => (a.includes(":") ? 6 : 4);

describe.each(FAMILIES)("bridge ADD, $label", ({ ranges, routes, families }) => {
  test("configures pod, host veth, bridge and node, and reports it all in the Result", () => {
    const node = new TestNode();
    const conf = node.conf({ ranges, routes, extra: { dns: DNS } });
    const pod = node.pod();
    const res = node.add(conf, { pod, id: "pod-a" });

    // Pod side, seen by iproute2.
    const eth0 = link(pod, "eth0")!;
    expect(eth0).toBeDefined();
    expect(eth0.flags).toContain("UP");
    expect(eth0.mtu).toBe(1500);
    const podAddrs = addrs(pod, "eth0");
    expect(podAddrs.map(familyOf).sort()).toEqual([...families]);
    for (const f of families) {
      const a = podAddrs.find((x) => familyOf(x) === f)!;
      expect(a.endsWith(`/${PREFIX_LEN[f]}`)).toBe(true);
      const def = defaultRoute(pod, f);
      expect(def).toMatchObject({ gateway: GATEWAY[f], dev: "eth0" });
    }

    // Host side: the veth (found by its alias) is a port of cbr0, up, with hairpin.
    const veth = hostVethOf(node.ns, "mnbnet", "pod-a")!;
    expect(veth).toBeDefined();
    expect(veth.master).toBe("cbr0");
    expect(veth.flags).toContain("UP");
    expect(veth.linkinfo?.info_slave_kind).toBe("bridge");
    expect(veth.linkinfo?.info_slave_data?.hairpin).toBe(true);
    const br = link(node.ns, "cbr0")!;
    expect(br.linkinfo?.info_kind).toBe("bridge");
    expect(br.flags).toContain("UP");
    const brAddrs = addrs(node.ns, "cbr0");
    for (const f of families) expect(brAddrs).toContain(`${GATEWAY[f]}/${PREFIX_LEN[f]}`);
    for (const f of families) expect(sysctl(node.ns, FORWARDING[f])).toBe("1");

    // The reservation files name this attachment.
    expect(reservedFor(node.dataDir, "pod-a").sort()).toEqual(podAddrs.map(plain).sort());
    expect(antiSpoofVeths(node.ns)).toEqual([veth.ifname]);

    // The Result describes exactly that.
    expect(res.cniVersion).toBe("1.1.0");
    expect(res.interfaces).toEqual([
      { name: "cbr0", mac: link(node.ns, "cbr0")!.address },
      { name: veth.ifname, mac: veth.address },
      { name: "eth0", mac: eth0.address, mtu: 1500, sandbox: netnsPath(pod) },
    ]);
    expect(res.ips.map((i: any) => i.address).sort()).toEqual([...podAddrs].sort());
    for (const ip of res.ips) {
      expect(ip.interface).toBe(2);
      expect(ip.gateway).toBe(GATEWAY[familyOf(ip.address)]);
    }
    expect(res.routes).toEqual(routes.map((r) => ({ ...r, gw: GATEWAY[familyOf(r.dst)] })));
    expect(res.dns).toEqual(DNS);
  });

  test("two pods reach each other and the node reaches both", () => {
    const node = new TestNode();
    const conf = node.conf({ ranges, routes });
    const [a, b] = [node.pod(), node.pod()];
    const ra = node.add(conf, { pod: a, id: "pod-a" });
    const rb = node.add(conf, { pod: b, id: "pod-b" });
    for (const f of families) {
      const ipA = plain(ra.ips.find((i: any) => familyOf(i.address) === f).address);
      const ipB = plain(rb.ips.find((i: any) => familyOf(i.address) === f).address);
      expect(ipA).not.toBe(ipB);
      expect(ping(a, ipB)).toBe(true);
      expect(ping(b, ipA)).toBe(true);
      expect(ping(node.ns, ipA)).toBe(true);
      expect(ping(node.ns, ipB)).toBe(true);
      expect(ping(a, GATEWAY[f])).toBe(true);
    }
    expect(hostVeths(node.ns)).toHaveLength(2);
  }, 30_000);
});

describe("bridge MAC", () => {
  test("is set once: pods joining and leaving do not change it, the Result reports it", () => {
    const node = new TestNode();
    const conf = node.conf();
    const [a, b] = [node.pod(), node.pod()];
    const ra = node.add(conf, { pod: a, id: "pod-a" });
    const mac = link(node.ns, "cbr0")!.address;
    expect(ra.interfaces[0]).toEqual({ name: "cbr0", mac });
    const rb = node.add(conf, { pod: b, id: "pod-b" });
    expect(rb.interfaces[0].mac).toBe(mac);
    expect(ping(b, GATEWAY[4])).toBe(true);
    expect(node.del(conf, { pod: a, id: "pod-a" }).code).toBe(0);
    // Pod b's neighbour entry for the gateway must stay valid.
    expect(link(node.ns, "cbr0")!.address).toBe(mac);
    expect(ping(b, GATEWAY[4])).toBe(true);
  });
});

describe("bridge ADD Result in every spec version", () => {
  const VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
  let node: TestNode;
  let pod: string;
  beforeAll(() => {
    node = new TestNode();
    pod = node.pod();
  });

  test.each(VERSIONS)("cniVersion %s", (version) => {
    const conf = node.conf({ cniVersion: version, extra: { dns: DNS } });
    const id = `v${version.replaceAll(".", "")}`;
    const res = node.add(conf, { pod, id });
    const have = addrs(pod, "eth0");
    const v4 = have.find((a) => familyOf(a) === 4)!;
    const v6 = have.find((a) => familyOf(a) === 6)!;
    expect(res.cniVersion).toBe(version);
    expect(res.dns).toEqual(DNS);
    if (version === "0.1.0" || version === "0.2.0") {
      expect(Object.keys(res).sort()).toEqual(["cniVersion", "dns", "ip4", "ip6"]);
      expect(res.ip4).toEqual({ ip: v4, gateway: GATEWAY[4], routes: [{ dst: "0.0.0.0/0", gw: GATEWAY[4] }] });
      expect(res.ip6).toEqual({ ip: v6, gateway: GATEWAY[6], routes: [{ dst: "::/0", gw: GATEWAY[6] }] });
    } else {
      expect(Object.keys(res).sort()).toEqual(["cniVersion", "dns", "interfaces", "ips", "routes"]);
      const legacy = version.startsWith("0.");
      expect(res.interfaces.map((i: any) => i.name)).toEqual(["cbr0", hostVethOf(node.ns, "mnbnet", id)!.ifname, "eth0"]);
      expect(res.interfaces[2].sandbox).toBe(netnsPath(pod));
      expect(res.interfaces[2].mac).toBe(link(pod, "eth0")!.address);
      // The interface mtu field exists only since 1.0 results.
      expect("mtu" in res.interfaces[2]).toBe(!legacy);
      expect(res.ips).toEqual([
        { ...(legacy ? { version: "4" } : {}), address: v4, gateway: GATEWAY[4], interface: 2 },
        { ...(legacy ? { version: "6" } : {}), address: v6, gateway: GATEWAY[6], interface: 2 },
      ]);
      expect(res.routes).toEqual([
        { dst: "0.0.0.0/0", gw: GATEWAY[4] },
        { dst: "::/0", gw: GATEWAY[6] },
      ]);
    }
    expect(node.del(conf, { pod, id }).code).toBe(0);
    expect(link(pod, "eth0")).toBeUndefined();
    expect(reservations(node.dataDir).size).toBe(0);
  });
});
