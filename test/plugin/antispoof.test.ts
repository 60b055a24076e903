// Anti-spoofing (on by default) in both modes, through the compiled plugin: a pod that sends
// from an address it does not own (a second address added inside it) or, on a bridge, from
// a MAC it does not own, does not reach its target, while its real address does. Whether a
// packet arrived is read from the target's own ICMP counters (/proc/net/snmp), so a reply
// that cannot route back is not mistaken for a drop; a node with antiSpoofing off shows the
// same forged packets do arrive there. The nft state (the pod's elements in the sets of the
// mncni-antispoof table) is checked with `nft -j list`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import {
  antiSpoofEntries,
  antiSpoofTable,
  destroyAllNodes,
  echoesDelivered,
  echoRequestsIn,
  familyOf,
  hostVethOf,
  NET,
  pingOnce,
  plain,
  reaches,
  TestNode,
  UPLINK,
  type Fam,
  type Mode,
  type PodRef,
} from "./fixture.ts";

const FORGED = { 4: "10.244.1.200", 6: "fd00:10:244:1::200" } as const;
const FORGED_MAC = "02:00:5e:00:53:99";
const TABLE_FAMILY = { bridge: "bridge", routed: "inet" } as const;

afterAll(destroyAllNodes);
// Real traffic on a shared 2-core machine: allow for a slow moment.
setDefaultTimeout(20_000);

const ipOf = (result: any, f: Fam): string => plain(result.ips.find((i: any) => familyOf(i.address) === f).address);

function addForgedAddresses(pod: string): void {
  run(["ip", "-n", pod, "addr", "add", `${FORGED[4]}/32`, "dev", "eth0"]);
  run(["ip", "-n", pod, "addr", "add", `${FORGED[6]}/128`, "dev", "eth0", "nodad"]);
}

describe.each(["bridge", "routed"] as Mode[])("anti-spoofing, %s mode", (mode) => {
  let node: TestNode;
  let conf: Record<string, any>;
  let p1: PodRef & { result: any };
  let p2: PodRef & { result: any };
  const nftFamily = TABLE_FAMILY[mode];

  beforeAll(() => {
    node = new TestNode({ uplink: true });
    conf = node.conf({ extra: { mode } });
    p1 = node.addPod(conf, "s1");
    p2 = node.addPod(conf, "s2");
    addForgedAddresses(p1.pod);
  });
  afterAll(() => node?.destroy());

  /** Deletes by hand every element of a host veth from the table's sets. */
  const purgeElements = (veth: string) => {
    const table = antiSpoofTable(node.ns, nftFamily);
    const script = [...(table?.sets ?? [])].flatMap(([name, elems]) =>
      elems
        .filter((e) => e[0] === veth)
        .map((e) => `delete element ${nftFamily} mncni-antispoof ${name} { ${e.map((k, i) => (i === 0 ? `"${k}"` : k)).join(" . ")} }\n`),
    );
    if (script.length) run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], { stdin: script.join("") });
  };
  const entriesOf = (id: string) => antiSpoofEntries(antiSpoofTable(node.ns, nftFamily), hostVethOf(node.ns, NET, id)!.ifname);
  const eth0Mac = (result: any) => result.interfaces.find((i: any) => i.name === "eth0").mac;

  test("the table holds each pod's host veth with its addresses (and MAC on a bridge), and nothing else of it", () => {
    const table = antiSpoofTable(node.ns, nftFamily)!;
    expect(table).toBeDefined();
    expect(table.rules).toBeGreaterThan(0);
    for (const p of [p1, p2]) {
      const veth = hostVethOf(node.ns, NET, p.id)!.ifname;
      const want = [`ports: ${veth}`, `addr4: ${veth} . ${ipOf(p.result, 4)}`, `addr6: ${veth} . ${ipOf(p.result, 6)}`];
      if (mode === "bridge") want.push(`macs: ${veth} . ${eth0Mac(p.result)}`);
      expect(antiSpoofEntries(table, veth)).toEqual(want.sort());
    }
    // The other family's table is not created.
    expect(antiSpoofTable(node.ns, mode === "bridge" ? "inet" : "bridge")).toBeUndefined();
  });

  for (const f of [4, 6] as Fam[]) {
    test(`IPv${f}: the real source reaches another pod and the node, a forged source reaches neither`, async () => {
      for (const [target, dst] of [
        [p2.pod, ipOf(p2.result, f)],
        [node.ns, UPLINK.node[f]],
      ] as const) {
        const real = ipOf(p1.result, f);
        expect(await echoesDelivered({ from: p1.pod, target, dst, source: real, real, arrive: true })).toBe(3);
        expect(await echoesDelivered({ from: p1.pod, target, dst, source: FORGED[f], real, arrive: false })).toBe(0);
      }
    });
  }

  if (mode === "bridge") {
    test("a forged MAC reaches nothing; the pod's own MAC works again", async () => {
      const real = p1.result.interfaces.find((i: any) => i.name === "eth0").mac;
      for (const f of [4, 6] as Fam[]) expect(await reaches(p1.pod, ipOf(p2.result, f), { from: ipOf(p1.result, f) })).toBe(true);
      run(["ip", "-n", p1.pod, "link", "set", "eth0", "address", FORGED_MAC]);
      try {
        for (const f of [4, 6] as Fam[]) {
          const before = echoRequestsIn(p2.pod, f);
          pingOnce(p1.pod, ipOf(p2.result, f), { from: ipOf(p1.result, f), count: 3, wait: 0.3 });
          await Bun.sleep(300);
          expect(echoRequestsIn(p2.pod, f) - before).toBe(0);
        }
      } finally {
        run(["ip", "-n", p1.pod, "link", "set", "eth0", "address", real]);
      }
      // The pod's neighbour entries went stale while its MAC was forged; start afresh.
      run(["ip", "-n", p1.pod, "neigh", "flush", "dev", "eth0"]);
      for (const f of [4, 6] as Fam[]) expect(await reaches(p1.pod, ipOf(p2.result, f), { from: ipOf(p1.result, f) })).toBe(true);
    });
  }

  test("CHECK fails when the pod's port or address elements are removed; DEL still succeeds", () => {
    const removers: Record<string, (veth: string, p: PodRef & { result: any }) => string> = {
      port: (veth) => `delete element ${nftFamily} mncni-antispoof ports { "${veth}" }\n`,
      addresses: (veth, p) =>
        `delete element ${nftFamily} mncni-antispoof addr4 { "${veth}" . ${ipOf(p.result, 4)} }\n` +
        `delete element ${nftFamily} mncni-antispoof addr6 { "${veth}" . ${ipOf(p.result, 6)} }\n`,
    };
    if (mode === "bridge") removers.mac = (veth, p) => `delete element bridge mncni-antispoof macs { "${veth}" . ${eth0Mac(p.result)} }\n`;
    for (const [what, script] of Object.entries(removers)) {
      const p = node.addPod(conf, `s3${what}`);
      const veth = hostVethOf(node.ns, NET, p.id)!.ifname;
      expect(node.check(conf, p.result, p).code).toBe(0);
      run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], { stdin: script(veth, p) });
      const r = node.check(conf, p.result, p);
      expect({ what, code: r.code }).not.toEqual({ what, code: 0 });
      expect(r.json.msg).toContain(veth);
      expect(node.del(conf, p).code).toBe(0);
      // Whatever DEL left (see the next test) must not leak into the tests after this one.
      purgeElements(veth);
    }
  });

  // DEL finds a pod's elements by its port element's comment; without it, by listing the sets.
  test("DEL removes the pod's remaining elements when its port element was removed by hand", () => {
    const p = node.addPod(conf, "s4");
    const veth = hostVethOf(node.ns, NET, "s4")!.ifname;
    run(["ip", "netns", "exec", node.ns, "nft", "delete", "element", nftFamily, "mncni-antispoof", "ports", `{ "${veth}" }`]);
    try {
      expect(node.del(conf, p).code).toBe(0);
      expect(antiSpoofEntries(antiSpoofTable(node.ns, nftFamily), veth)).toEqual([]);
    } finally {
      purgeElements(veth);
    }
  });

  test("DEL and GC remove the pod's elements, and only those", () => {
    const p5 = node.addPod(conf, "s5");
    const [v1, v5] = ["s1", "s5"].map((id) => hostVethOf(node.ns, NET, id)!.ifname);
    expect(entriesOf("s5").length).toBeGreaterThan(0);
    const p2Entries = entriesOf("s2");

    expect(node.del(conf, p1).code).toBe(0);
    expect(antiSpoofEntries(antiSpoofTable(node.ns, nftFamily), v1)).toEqual([]);

    expect(node.gc(conf, [p2]).code).toBe(0);
    const table = antiSpoofTable(node.ns, nftFamily)!;
    expect(antiSpoofEntries(table, v5)).toEqual([]);
    expect(hostVethOf(node.ns, NET, "s5")).toBeUndefined();
    // Only p2 is left in every set.
    expect(antiSpoofEntries(table, hostVethOf(node.ns, NET, "s2")!.ifname)).toEqual(p2Entries);
    for (const [name, elems] of table.sets) expect({ name, n: elems.length }).toEqual({ name, n: elems.filter((e) => e[0] === hostVethOf(node.ns, NET, "s2")!.ifname).length });
    expect(node.check(conf, p2.result, p2).code).toBe(0);
    void p5;
  });

  test("GC removes the elements of a host veth that is gone (its DEL never ran), and only those", () => {
    node.addPod(conf, "s6");
    const v6 = hostVethOf(node.ns, NET, "s6")!.ifname;
    const p2Entries = entriesOf("s2");
    // The pod's namespace went away without a DEL: the veth pair with it, the elements stay.
    run(["ip", "-n", node.ns, "link", "del", v6]);
    expect(antiSpoofEntries(antiSpoofTable(node.ns, nftFamily), v6).length).toBeGreaterThan(0);
    expect(node.gc(conf, [p2]).code).toBe(0);
    const table = antiSpoofTable(node.ns, nftFamily)!;
    expect(antiSpoofEntries(table, v6)).toEqual([]);
    expect(antiSpoofEntries(table, hostVethOf(node.ns, NET, "s2")!.ifname)).toEqual(p2Entries);
    expect(node.check(conf, p2.result, p2).code).toBe(0);
  });
});

describe.each(["bridge", "routed"] as Mode[])("antiSpoofing: false, %s mode (control)", (mode) => {
  let node: TestNode;
  let p1: PodRef & { result: any };
  let p2: PodRef & { result: any };

  beforeAll(() => {
    node = new TestNode({ uplink: true });
    const conf = node.conf({ extra: { mode, antiSpoofing: false } });
    p1 = node.addPod(conf, "c1");
    p2 = node.addPod(conf, "c2");
    addForgedAddresses(p1.pod);
  });
  afterAll(() => node?.destroy());

  test("no anti-spoofing table, and forged packets do arrive", async () => {
    expect(antiSpoofTable(node.ns, TABLE_FAMILY[mode])).toBeUndefined();
    for (const f of [4, 6] as Fam[]) {
      const d = { from: p1.pod, target: p2.pod, dst: ipOf(p2.result, f), source: FORGED[f], real: ipOf(p1.result, f), arrive: true };
      expect(await echoesDelivered(d)).toBe(3);
    }
  });
});
