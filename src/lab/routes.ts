// What host-gw routing should look like on every node, and whether the kernel agrees. Used to
// program routes (static wiring) and to wait for the agents to converge (agent wiring).
import { ipJson } from "./sh.ts";
import { families, nodeAddressOf, type LabState, type NodeState } from "./state.ts";
import { familyOf } from "../net/ip.ts";
import { cidrContains, normalizeCIDR } from "../net/cidr.ts";

export interface GatewayRoute {
  dst: string;
  gateway: string;
}

export function desiredRoutes(s: LabState, node: NodeState): GatewayRoute[] {
  return s.nodes
    .filter((n) => n !== node && n.name !== node.name)
    .flatMap((n) => n.podCidrs.map((dst) => ({ dst: normalizeCIDR(dst), gateway: nodeAddressOf(n, familyOf(dst)) ?? n.address })));
}

/** Routes through a gateway into the cluster CIDR: the ones host-gw routing owns. */
export function gatewayRoutes(s: LabState, node: NodeState): GatewayRoute[] {
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
