// What routing should look like on every node, and whether the kernel agrees. Used to program
// routes (static wiring, host-gw) and to wait for the agents to converge (agent wiring). A peer
// is reached directly (a route via its address: host-gw, or auto on the same segment) or
// through the tunnel (via its pod CIDR's network address, onlink on mncni.vxlan: vxlan, or
// auto across segments).
import { ipJson } from "./sh.ts";
import { families, nodeAddressOf, type LabState, type NodeState } from "./state.ts";
import { familyOf } from "../net/ip.ts";
import { cidrContains, normalizeCIDR } from "../net/cidr.ts";

export interface GatewayRoute {
  dst: string;
  gateway: string;
}

export type PeerPath = "direct" | "tunnel";

/** How `node` should reach `peer` under the lab's routing. */
export function expectedPath(s: LabState, node: NodeState, peer: NodeState): PeerPath {
  if (s.options.routing === "host-gw") return "direct";
  if (s.options.routing === "vxlan") return "tunnel";
  return (node.segment ?? 0) === (peer.segment ?? 0) ? "direct" : "tunnel";
}

export function desiredRoutes(s: LabState, node: NodeState): GatewayRoute[] {
  return s.nodes
    .filter((n) => n !== node && n.name !== node.name)
    .flatMap((n) => n.podCidrs.map((dst) => ({
      dst: normalizeCIDR(dst),
      gateway: expectedPath(s, node, n) === "tunnel" ? normalizeCIDR(dst).split("/")[0]! : nodeAddressOf(n, familyOf(dst)) ?? n.address,
    })));
}

/** The path the kernel of `node` actually takes to each peer's pod CIDRs (a route on a VXLAN device is the tunnel). */
export function actualPaths(s: LabState, node: NodeState): Map<string, PeerPath | "none"> {
  const routes = families(s).flatMap((f) => ipJson<{ dst: string; dev?: string }[]>(node.ns, [`-${f}`, "route", "show"]));
  const out = new Map<string, PeerPath | "none">();
  for (const peer of s.nodes) {
    if (peer === node) continue;
    const mine = peer.podCidrs.map((c) => routes.find((r) => r.dst === normalizeCIDR(c)));
    out.set(peer.name, mine.some((r) => !r) ? "none" : mine.some((r) => r!.dev?.startsWith("mncni.vxlan")) ? "tunnel" : "direct");
  }
  return out;
}

/** Routes through a gateway into the cluster CIDR: the ones host-gw routing owns. */
function gatewayRoutes(s: LabState, node: NodeState): GatewayRoute[] {
  const clusterCidrs = [s.options.clusterCidr, ...(s.options.clusterCidr6 ? [s.options.clusterCidr6] : [])];
  return families(s).flatMap((f) =>
    ipJson<{ dst: string; gateway?: string }[]>(node.ns, [`-${f}`, "route", "show"])
      .filter((r) => r.gateway && r.dst !== "default" && clusterCidrs.some((c) => familyOf(c) === f && cidrContains(c, r.dst.split("/")[0]!)))
      .map((r) => ({ dst: r.dst.includes("/") ? r.dst : `${r.dst}/${f === 4 ? 32 : 128}`, gateway: r.gateway! })),
  );
}

/** Differences between desired and actual routes on a node; empty when converged. */
export function routeDiff(s: LabState, node: NodeState): { missing: GatewayRoute[]; stale: GatewayRoute[] } {
  const want = desiredRoutes(s, node);
  const have = gatewayRoutes(s, node);
  const key = (r: GatewayRoute) => `${r.dst} via ${r.gateway}`;
  const haveKeys = new Set(have.map(key));
  const wantKeys = new Set(want.map(key));
  return { missing: want.filter((r) => !haveKeys.has(key(r))), stale: have.filter((r) => !wantKeys.has(key(r))) };
}

export function describeDiff(d: { missing: GatewayRoute[]; stale: GatewayRoute[] }): string {
  const f = (r: GatewayRoute) => `${r.dst} via ${r.gateway}`;
  return [...d.missing.map((r) => `missing ${f(r)}`), ...d.stale.map((r) => `stale ${f(r)}`)].join(", ");
}
