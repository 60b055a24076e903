// The pure parts of the overlay: VTEP MAC and gateway derivation, auto's per-peer path, the
// VXLAN backend's desired objects, the pod MTU.
import { describe, expect, test } from "bun:test";
import { desiredVxlan, txChecksumBroken, pathTo, podMTU, splitPeers, underlayMTU, vtepGateway, vtepMAC, vxlanOverhead, vxlanPublished, type LocalAddr } from "../../src/agent/routing/index.ts";
import { encodeRoutingData, ROUTING_CONDITION, routingDataOf } from "../../src/cluster/node-routing.ts";

const localAddrs: LocalAddr[] = [
  { index: 2, family: 4, cidr: "10.99.0.11/24", address: "10.99.0.11", prefixLen: 24, scope: 0 },
  { index: 2, family: 6, cidr: "fd99:0::11/64", address: "fd99::11", prefixLen: 64, scope: 0 },
  { index: 1, family: 4, cidr: "127.0.0.1/8", address: "127.0.0.1", prefixLen: 8, scope: 254 },
];

describe("VTEP derivation", () => {
  test("IPv4: 0a:58 and the address bytes, locally administered unicast", () => {
    expect(vtepMAC("10.99.1.12")).toBe("0a:58:0a:63:01:0c");
    expect(vtepMAC("192.168.255.1")).toBe("0a:58:c0:a8:ff:01");
  });
  test("IPv6: 0e and five hash bytes; stable, distinct for neighbours, any spelling of the address", () => {
    const a = vtepMAC("fd99:1::12");
    expect(a).toMatch(/^0e(:[0-9a-f]{2}){5}$/);
    expect(vtepMAC("fd99:1:0:0:0:0:0:12")).toBe(a);
    expect(vtepMAC("fd99:1::13")).not.toBe(a);
    // Bit 0 of the first byte clear (unicast), bit 1 set (local).
    for (const m of [a, vtepMAC("10.0.0.1")]) expect(parseInt(m.slice(0, 2), 16) & 3).toBe(2);
  });
  test("gateway: the pod CIDR's network address", () => {
    expect(vtepGateway("10.244.3.0/24")).toBe("10.244.3.0");
    expect(vtepGateway("fd00:244:3::/64")).toBe("fd00:244:3::");
  });
});

describe("auto: the path to each peer", () => {
  test("on a connected subnet: direct; elsewhere: tunnel; per family", () => {
    expect(pathTo(["10.99.0.12"], "10.244.2.0/24", localAddrs)).toBe("direct");
    expect(pathTo(["10.99.1.13"], "10.244.3.0/24", localAddrs)).toBe("tunnel");
    expect(pathTo(["10.99.1.13", "fd99::13"], "fd00:244:3::/64", localAddrs)).toBe("direct");
    expect(pathTo(["10.99.1.13", "fd99:1::13"], "fd00:244:3::/64", localAddrs)).toBe("tunnel");
  });
  test("no InternalIP of the family, or one of ours: direct, where host-gw reports it", () => {
    expect(pathTo(["fd99:1::13"], "10.244.3.0/24", localAddrs)).toBe("direct");
    expect(pathTo(["10.99.0.11"], "10.244.3.0/24", localAddrs)).toBe("direct");
  });
  test("splitPeers keeps every peer in both lists with the pod CIDRs of its path", () => {
    const s = splitPeers({ self: "n1", localAddrs, peers: [
      { name: "n2", internalIPs: ["10.99.0.12"], podCIDRs: ["10.244.2.0/24"] },
      { name: "n3", internalIPs: ["10.99.1.13", "fd99::13"], podCIDRs: ["10.244.3.0/24", "fd00:244:3::/64"] },
    ] });
    expect(s.direct.map((p) => p.podCIDRs)).toEqual([["10.244.2.0/24"], ["fd00:244:3::/64"]]);
    expect(s.tunnel.map((p) => p.podCIDRs)).toEqual([[], ["10.244.3.0/24"]]);
  });
});

describe("VXLAN: desired devices and entries", () => {
  const peers = [
    { name: "n3", internalIPs: ["10.99.1.13", "fd99:1::13"], podCIDRs: ["10.244.3.0/24", "fd00:244:3::/64"] },
    { name: "n4", internalIPs: ["fd99:1::14"], podCIDRs: ["10.244.4.0/24"] },
  ];
  test("a device per family on the link of this node's InternalIP; per peer pod CIDR an entry; problems named", () => {
    const d = desiredVxlan({ self: "n1", localAddrs, peers, selfIPs: ["10.99.0.11", "fd99::11"], families: [4, 6] }, { vni: 7, port: 4789 });
    expect(d.devices).toEqual([
      { family: 4, name: "mncni.vxlan", vni: 7, port: 4789, local: "10.99.0.11", underlay: 2, mac: "0a:58:0a:63:00:0b" },
      { family: 6, name: "mncni.vxlan6", vni: 7, port: 4789, local: "fd99::11", underlay: 2, mac: vtepMAC("fd99::11") },
    ]);
    expect(d.entries).toEqual([
      { node: "n3", family: 4, podCIDR: "10.244.3.0/24", remote: "10.99.1.13", mac: "0a:58:0a:63:01:0d", gateway: "10.244.3.0" },
      { node: "n3", family: 6, podCIDR: "fd00:244:3::/64", remote: "fd99:1::13", mac: vtepMAC("fd99:1::13"), gateway: "fd00:244:3::" },
    ]);
    expect(d.problems).toEqual(['cannot tunnel to pod CIDR "10.244.4.0/24" of node "n4": the node has no IPv4 InternalIP']);
  });
  test("an InternalIP that is not local: no device; a problem only for each peer that needs one", () => {
    const input = { self: "n1", localAddrs, peers: peers.slice(0, 1), selfIPs: ["10.99.7.7"], families: [4 as const] };
    const d = desiredVxlan(input, { vni: 1, port: 4789 });
    expect(d.devices).toEqual([]);
    expect(d.problems).toEqual([
      'cannot tunnel to pod CIDR "10.244.3.0/24" of node "n3": this node\'s InternalIP "10.99.7.7" is not an address of this node (no device "mncni.vxlan")',
      'cannot tunnel to pod CIDR "fd00:244:3::/64" of node "n3": this node has no IPv6 InternalIP to tunnel from',
    ]);
    expect(desiredVxlan({ ...input, peers: [] }, { vni: 1, port: 4789 }).problems).toEqual([]);
  });
});

describe("pod MTU", () => {
  const mtuOf = (i: number) => (i === 2 ? 9000 : undefined);
  test("the underlay: the smallest MTU among the links holding this node's InternalIPs", () => {
    expect(underlayMTU(["10.99.0.11"], localAddrs, mtuOf)).toBe(9000);
    expect(underlayMTU(["10.99.9.9"], localAddrs, mtuOf)).toBeUndefined();
  });
  test("minus 50 over IPv4, 70 over IPv6 (the larger wins on dual-stack), unchanged for host-gw", () => {
    expect(podMTU({ underlay: 1500, overhead: vxlanOverhead, selfIPs: ["10.99.0.11"] })).toEqual({ mtu: 1450 });
    expect(podMTU({ underlay: 1500, overhead: vxlanOverhead, selfIPs: ["fd99::11"] })).toEqual({ mtu: 1430 });
    expect(podMTU({ underlay: 9000, overhead: vxlanOverhead, selfIPs: ["10.99.0.11", "fd99::11"] })).toEqual({ mtu: 8930 });
    expect(podMTU({ underlay: 1500, overhead: () => 0, selfIPs: ["10.99.0.11"] })).toEqual({ mtu: 1500 });
    expect(podMTU({ underlay: undefined, overhead: vxlanOverhead, selfIPs: [] })).toEqual({ mtu: 1500 });
  });
  test("--mtu is taken as given; above what the tunnel carries it is a problem", () => {
    expect(podMTU({ underlay: 1500, overhead: vxlanOverhead, selfIPs: ["10.99.0.11"], explicit: 1400 })).toEqual({ mtu: 1400 });
    const p = podMTU({ underlay: 1500, overhead: vxlanOverhead, selfIPs: ["10.99.0.11"], explicit: 1500 });
    expect(p.mtu).toBe(1500);
    expect(p.problem).toContain("cannot use pod MTU 1500: the underlay MTU is 1500 and the encapsulation takes 50 bytes");
  });
});

describe("VXLAN transmit checksum offload", () => {
  test("broken before 5.7 (and when the release cannot be read): turned off there only", () => {
    for (const r of ["4.19.0-26-amd64", "5.4.0-1109-azure", "5.6.19", "", "garbage"]) expect(txChecksumBroken(r)).toBe(true);
    for (const r of ["5.7.0", "5.15.0-1057-azure", "6.18.44-fc-v657", "10.0"]) expect(txChecksumBroken(r)).toBe(false);
  });
});

describe("per-node routing data (published on the Node, read back from the peers)", () => {
  const peer = (published?: Record<string, string>) => ({ name: "n3", internalIPs: ["10.99.1.13"], podCIDRs: ["10.244.3.0/24"], ...(published ? { published } : {}) });
  const input = (published?: Record<string, string>) => ({ self: "n1", localAddrs, peers: [peer(published)], selfIPs: ["10.99.0.11"], families: [4 as const] });

  test("VXLAN publishes its VNI and port under its own key", () => {
    expect(vxlanPublished({ vni: 7, port: 4789 })).toEqual({ vxlan: "vni=7,port=4789" });
  });
  test("a peer publishing other VXLAN settings is a problem naming both; the same, none, or other keys are not", () => {
    const s = { vni: 7, port: 4789 };
    expect(desiredVxlan(input({ vxlan: "vni=7,port=8472" }), s).problems).toEqual([
      'VXLAN to node "n3" cannot work: it publishes vni=7,port=8472, this node uses vni=7,port=4789 (--vxlan-vni and --vxlan-port must be the same on every node)',
    ]);
    expect(desiredVxlan(input({ vxlan: "vni=7,port=4789", wireguard: "key" }), s).problems).toEqual([]);
    expect(desiredVxlan(input(), s).problems).toEqual([]);
    expect(desiredVxlan(input({ other: "x" }), s).problems).toEqual([]);
  });
  test("the Node's MncniRouting condition: a JSON object of strings, keys sorted when written; anything else is nothing published", () => {
    expect(encodeRoutingData({ vxlan: "vni=1,port=4789", bgp: "x" })).toBe('{"bgp":"x","vxlan":"vni=1,port=4789"}');
    const cond = (message: string, status = "True") => ({ status: { conditions: [{ type: "Ready", status: "True" }, { type: ROUTING_CONDITION, status, message }] } });
    expect(routingDataOf(cond('{"vxlan":"vni=1,port=4789"}'))).toEqual({ vxlan: "vni=1,port=4789" });
    for (const bad of ["not json", "[]", '{"vxlan":1}', "null"]) expect(routingDataOf(cond(bad))).toBeUndefined();
    expect(routingDataOf(cond('{"vxlan":"x"}', "False"))).toBeUndefined();
    expect(routingDataOf({ status: {} })).toBeUndefined();
  });
});
