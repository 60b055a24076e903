// Routed mode through the compiled plugin, per stack (IPv4, IPv6, dual): no bridge, host
// routes tagged proto 77, link-local gateway with a pinned neighbour entry in the pod, real
// pod-to-pod / node-to-pod / outside-to-pod traffic, and CHECK, DEL, GC against the kernel.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { netnsPath, run } from "../helpers/netns.ts";
import {
  addrs,
  antiSpoofEntries,
  antiSpoofTable,
  destroyAllNodes,
  familyOf,
  hostVethOf,
  NET,
  links,
  mncniRoutes,
  neighbours,
  plain,
  reaches,
  reservedIps,
  routes,
  STACKS,
  tcpExchange,
  TestNode,
  UPLINK,
  type Fam,
  type PodRef,
  type Stack,
} from "./fixture.ts";

const GATEWAY = { 4: "169.254.1.1", 6: "fe80::1" } as const;

afterAll(destroyAllNodes);
// Real traffic on a shared 2-core machine: allow for a slow moment.
setDefaultTimeout(30_000);

/** Addresses (no prefix) of the pod's Result, per family. */
const ipOf = (result: any, f: Fam): string => plain(result.ips.find((i: any) => familyOf(i.address) === f).address);

describe.each(["v4", "v6", "dual"] as Stack[])("routed mode, %s", (stack) => {
  const families = STACKS[stack].families;
  let node: TestNode;
  let conf: Record<string, any>;
  let p1: PodRef & { result: any };
  let p2: PodRef & { result: any };

  beforeAll(() => {
    node = new TestNode({ uplink: true });
    conf = node.conf({ mode: "routed", stack });
    p1 = node.addPod(conf, "r1");
    p2 = node.addPod(conf, "r2");
  });
  afterAll(() => node?.destroy());

  test("ADD wires a veth with host routes and a pinned link-local gateway, and no bridge", () => {
    const r = p1.result;
    const veth = hostVethOf(node.ns, NET, "r1")!;
    expect(veth).toBeDefined();
    expect(r.interfaces).toEqual([
      { name: veth.ifname, mac: veth.address },
      { name: "eth0", mac: expect.any(String), mtu: 1500, sandbox: netnsPath(p1.pod) },
    ]);
    expect(r.ips.map((i: any) => familyOf(i.address)).sort()).toEqual([...families]);
    for (const ip of r.ips) {
      const f = familyOf(ip.address);
      expect(ip).toEqual({ address: `${plain(ip.address)}/${f === 4 ? 32 : 128}`, gateway: GATEWAY[f], interface: 1 });
    }

    expect(links(node.ns).filter((l) => l.linkinfo?.info_kind === "bridge")).toEqual([]);
    expect(veth.master).toBeUndefined();
    expect(veth.flags).toContain("UP");

    const hostRoutes = mncniRoutes(node.ns);
    for (const f of families) {
      const route = hostRoutes.find((h) => h.dst === ipOf(r, f));
      expect(route).toMatchObject({ dev: veth.ifname });
      if (f === 4) expect(route!.scope).toBe("link");
    }

    expect(addrs(p1.pod, "eth0").sort()).toEqual(r.ips.map((i: any) => i.address).sort());
    for (const f of families) {
      const def = routes(p1.pod, f).find((x) => x.dst === "default");
      expect(def).toMatchObject({ gateway: GATEWAY[f], dev: "eth0" });
      if (f === 4) expect(def!.flags).toContain("onlink");
      const n = neighbours(p1.pod, f).find((x) => x.dst === GATEWAY[f]);
      expect(n).toMatchObject({ dev: "eth0", lladdr: veth.address });
      expect(n!.state).toContain("PERMANENT");
    }
    expect(r.routes).toEqual(STACKS[stack].routes.map((x) => ({ dst: x.dst, gw: GATEWAY[familyOf(x.dst)] })));
  });

  test("pods reach each other and the node reaches them (ping and TCP)", async () => {
    for (const f of families) {
      expect(await reaches(p1.pod, ipOf(p2.result, f))).toBe(true);
      expect(await reaches(node.ns, ipOf(p1.result, f))).toBe(true);
      // From outside the node: the client on the node's uplink, forwarded by the node.
      expect(await reaches(node.client, ipOf(p2.result, f))).toBe(true);
      expect(await tcpExchange({ server: p2.pod, client: p1.pod, addr: ipOf(p2.result, f), port: 8080 })).toBe(true);
      expect(await tcpExchange({ server: p1.pod, client: node.ns, addr: ipOf(p1.result, f), port: 8081 })).toBe(true);
      // The pod answers to the node's own address (its replies take the default route).
      expect(await reaches(p1.pod, UPLINK.node[f])).toBe(true);
    }
  });

  test("CHECK passes, and fails when a host route or the gateway neighbour entry is gone", () => {
    expect(node.check(conf, p1.result, p1).code).toBe(0);
    const veth = hostVethOf(node.ns, NET, "r1")!.ifname;
    for (const f of families) {
      const ip = ipOf(p1.result, f);
      const dst = `${ip}/${f === 4 ? 32 : 128}`;
      run(["ip", "-n", node.ns, `-${f}`, "route", "del", dst, "dev", veth]);
      try {
        const noRoute = node.check(conf, p1.result, p1);
        expect(noRoute.code).not.toBe(0);
        expect(noRoute.json.msg).toContain(ip);
      } finally {
        run(["ip", "-n", node.ns, `-${f}`, "route", "replace", dst, "dev", veth, "scope", "link", "proto", "77"]);
      }
      expect(node.check(conf, p1.result, p1).code).toBe(0);

      const n = neighbours(p1.pod, f).find((x) => x.dst === GATEWAY[f])!;
      run(["ip", "-n", p1.pod, `-${f}`, "neigh", "del", GATEWAY[f], "dev", "eth0"]);
      try {
        const noNeigh = node.check(conf, p1.result, p1);
        expect(noNeigh.code).not.toBe(0);
        expect(noNeigh.json.msg).toContain(GATEWAY[f]);
      } finally {
        run(["ip", "-n", p1.pod, `-${f}`, "neigh", "replace", GATEWAY[f], "lladdr", n.lladdr!, "dev", "eth0", "nud", "permanent"]);
      }
      expect(node.check(conf, p1.result, p1).code).toBe(0);
    }
  });

  test("DEL removes the veth, its host routes, its anti-spoofing entries and its reservation; twice is fine", async () => {
    const veth = hostVethOf(node.ns, NET, "r2")!.ifname;
    const ips = p2.result.ips.map((i: any) => plain(i.address));
    expect(reservedIps(node.dataDir)).toEqual(expect.arrayContaining(ips));
    expect(antiSpoofEntries(antiSpoofTable(node.ns, "inet"), veth).length).toBeGreaterThan(0);

    expect(node.del(conf, p2).code).toBe(0);
    expect(hostVethOf(node.ns, NET, "r2")).toBeUndefined();
    expect(mncniRoutes(node.ns).filter((r) => ips.includes(r.dst))).toEqual([]);
    expect(reservedIps(node.dataDir).filter((ip) => ips.includes(ip))).toEqual([]);
    expect(antiSpoofEntries(antiSpoofTable(node.ns, "inet"), veth)).toEqual([]);
    expect(links(p2.pod).map((l) => l.ifname)).toEqual(["lo"]);

    expect(node.del(conf, p2).code).toBe(0);
    // p1 is untouched.
    expect(node.check(conf, p1.result, p1).code).toBe(0);
    expect(await reaches(node.ns, ipOf(p1.result, families[0]!))).toBe(true);
  });

  test("GC removes what belongs to attachments that are no longer valid", async () => {
    const p3 = node.addPod(conf, "r3");
    const p4 = node.addPod(conf, "r4");
    const stale = hostVethOf(node.ns, NET, "r4")!.ifname;
    const staleIps = p4.result.ips.map((i: any) => plain(i.address));
    expect(mncniRoutes(node.ns).filter((r) => staleIps.includes(r.dst)).length).toBe(families.length);

    const gc = node.gc(conf, [p1, p3]);
    expect(gc.code).toBe(0);
    expect(hostVethOf(node.ns, NET, "r4")).toBeUndefined();
    expect(mncniRoutes(node.ns).filter((r) => staleIps.includes(r.dst))).toEqual([]);
    expect(reservedIps(node.dataDir).filter((ip) => staleIps.includes(ip))).toEqual([]);
    expect(antiSpoofEntries(antiSpoofTable(node.ns, "inet"), stale)).toEqual([]);
    expect(antiSpoofEntries(antiSpoofTable(node.ns, "inet"), hostVethOf(node.ns, NET, "r3")!.ifname).length).toBeGreaterThan(0);

    for (const p of [p1, p3]) {
      expect(node.check(conf, p.result, p).code).toBe(0);
      expect(await reaches(node.ns, ipOf(p.result, families[0]!))).toBe(true);
    }
    const kept = [...p1.result.ips, ...p3.result.ips].map((i: any) => plain(i.address));
    expect(mncniRoutes(node.ns).map((r) => r.dst).sort()).toEqual(kept.sort());
  });
});

describe("routed mode without IPAM routes", () => {
  let node: TestNode;
  beforeAll(() => {
    node = new TestNode({ uplink: true });
  });
  afterAll(() => node?.destroy());

  test("ADD pins no gateway and sets no default route, and CHECK does not ask for one", () => {
    const conf = node.conf({ mode: "routed", stack: "dual" });
    conf.ipam.routes = [];
    const p = node.addPod(conf, "nr1");
    expect(p.result.routes ?? []).toEqual([]);
    for (const f of [4, 6] as Fam[]) {
      expect(routes(p.pod, f).find((r) => r.dst === "default")).toBeUndefined();
      expect(neighbours(p.pod, f).find((n) => n.dst === GATEWAY[f])).toBeUndefined();
    }
    expect(node.check(conf, p.result, p).code).toBe(0);
    expect(node.del(conf, p).code).toBe(0);
  });
});
