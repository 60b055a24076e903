import { describe, expect, test } from "bun:test";
import { admitPodCIDRs } from "../../../src/agent/pod-cidrs.ts";
import { desiredHostGwRoutes, diffRoutes, hostGw, type DesiredRoute } from "../../../src/agent/routing/index.ts";
import { buildClusterState } from "../../../src/cluster/index.ts";
import type { KubeNode } from "../../../src/cluster/types.ts";
import { RTPROT_MNCNI, type RouteInfo } from "../../../src/kernel/index.ts";

const node = (name: string, cidrs: string[], ips: string[]): KubeNode => ({
  kind: "Node",
  metadata: { name },
  spec: { podCIDRs: cidrs },
  status: { addresses: ips.map((address) => ({ type: "InternalIP", address })) },
});

const localAddrs = [
  { family: 4 as const, cidr: "10.99.0.1/24", address: "10.99.0.1", prefixLen: 24, scope: 0 },
  { family: 6 as const, cidr: "fd99::1/64", address: "fd99::1", prefixLen: 64, scope: 0 },
  { family: 4 as const, cidr: "127.0.0.1/8", address: "127.0.0.1", prefixLen: 8, scope: 254 },
];

/** The reconciler's path: pod CIDRs admitted first, then the backend's desired routes. */
function desired(nodes: KubeNode[]) {
  const state = buildClusterState(nodes);
  const a = admitPodCIDRs({ self: "me", nodes: state.nodes, clusterCidr: [], localAddrs, inUse: new Map() });
  const peers = [...state.nodes.values()].filter((n) => n.name !== "me").sort((x, y) => x.name.localeCompare(y.name))
    .map((n) => ({ name: n.name, internalIPs: n.internalIPs, podCIDRs: a.podCIDRs.get(n.name)! }));
  const d = desiredHostGwRoutes({ self: "me", peers, localAddrs });
  return { items: d.items, problems: [...a.problems, ...d.problems] };
}

describe("host-gw: desired routes", () => {
  test("IPv4, IPv6 and dual-stack peers; self skipped; sorted by node", () => {
    const d = desired([
      node("me", ["10.244.1.0/24", "fd00:1::/64"], ["10.99.0.1", "fd99::1"]),
      node("c-ds", ["10.244.3.0/24", "fd00:3::/64"], ["10.99.0.3", "fd99::3"]),
      node("b-v6", ["fd00:2::/64"], ["fd99::2"]),
    ]);
    expect(d.problems).toEqual([]);
    expect(d.items).toEqual([
      { dst: "fd00:2::/64", gw: "fd99::2", family: 6, node: "b-v6" },
      { dst: "10.244.3.0/24", gw: "10.99.0.3", family: 4, node: "c-ds" },
      { dst: "fd00:3::/64", gw: "fd99::3", family: 6, node: "c-ds" },
    ]);
  });

  test("a node without pod CIDR gets no route and is not a problem", () => {
    const d = desired([node("me", ["10.244.1.0/24"], ["10.99.0.1"]), node("new", [], ["10.99.0.9"])]);
    expect(d).toEqual({ items: [], problems: [] });
  });

  test("peers that cannot be served are reported, the rest still routed", () => {
    const d = desired([
      node("me", ["10.244.1.0/24"], ["10.99.0.1"]),
      node("far", ["10.244.2.0/24"], ["10.98.0.2"]),
      node("no-v6", ["fd00:4::/64"], ["10.99.0.4"]),
      node("overlap", ["10.244.1.128/25"], ["10.99.0.5"]),
      node("self-ip", ["10.244.6.0/24"], ["10.99.0.1"]),
      node("ok", ["10.244.7.0/24"], ["10.99.0.7"]),
    ]);
    expect(d.items.map((r) => r.node)).toEqual(["ok"]);
    expect(d.problems).toHaveLength(4);
    expect(d.problems.join("\n")).toContain('via "10.98.0.2": not on-link');
    expect(d.problems.join("\n")).toContain("has no IPv6 InternalIP");
    expect(d.problems.join("\n")).toContain('overlaps "10.244.1.0/24" of node "me"');
    expect(d.problems.join("\n")).toContain("is an address of this node");
  });

  test("this node missing from the state: peers are still routed", () => {
    const d = desired([node("peer", ["10.244.2.0/24"], ["10.99.0.2"])]);
    expect(d.items).toHaveLength(1);
  });
});

const route = (dst: string, gw: string | undefined, protocol = RTPROT_MNCNI, extra: Partial<RouteInfo> = {}): RouteInfo => ({
  family: dst.includes(":") ? 6 : 4, dst, gw, table: 254, protocol, scope: 0, type: "unicast", ...extra,
});
const want = (dst: string, gw: string, node = "n"): DesiredRoute => ({ dst, gw, family: dst.includes(":") ? 6 : 4, node });

describe("diffRoutes", () => {
  test("no change: nothing to do", () => {
    const d = diffRoutes([want("10.244.2.0/24", "10.99.0.2")], [route("10.244.2.0/24", "10.99.0.2")], hostGw.ownsRoute);
    expect(d).toEqual({ add: [], change: [], remove: [] });
  });

  test("add, change gateway, remove a removed node's route", () => {
    const d = diffRoutes(
      [want("10.244.2.0/24", "10.99.0.22"), want("fd00:3::/64", "fd99::3")],
      [route("10.244.2.0/24", "10.99.0.2"), route("10.244.9.0/24", "10.99.0.9")],
      hostGw.ownsRoute,
    );
    expect(d.add.map((r) => r.dst)).toEqual(["fd00:3::/64"]);
    expect(d.change.map((r) => r.gw)).toEqual(["10.99.0.22"]);
    expect(d.remove.map((r) => r.dst)).toEqual(["10.244.9.0/24"]);
  });

  test("foreign routes, routed-mode pod routes (no gateway) and other tables are never removed", () => {
    const d = diffRoutes([], [
      route("10.244.2.0/24", "10.99.0.2", 3 /* boot: `ip route add` */),
      route("10.244.1.5/32", undefined, RTPROT_MNCNI, { oif: 7, scope: 253 }),
      route("10.244.4.0/24", "10.99.0.4", RTPROT_MNCNI, { table: 100 }),
    ], hostGw.ownsRoute);
    expect(d).toEqual({ add: [], change: [], remove: [] });
  });

  test("a duplicate owned route to one destination is removed", () => {
    const d = diffRoutes([want("10.244.2.0/24", "10.99.0.2")], [route("10.244.2.0/24", "10.99.0.2"), route("10.244.2.0/24", "10.99.0.3", RTPROT_MNCNI, { priority: 5 })], hostGw.ownsRoute);
    expect(d.remove).toHaveLength(1);
    expect(d.remove[0]!.priority).toBe(5);
  });
});
