// LoadBalancer addresses reach the nodes the way a BGP-speaking load balancer (MetalLB, a
// cloud's) sends them: the lab's router has one host route per address, with a next hop per
// node that should get the traffic — every node, or with externalTrafficPolicy Local only the
// nodes that have a ready endpoint. The external host reaches them through the router.
import type { KubeEndpointSlice, KubeService } from "../cluster/index.ts";
import { ipBatch, ipJson } from "./sh.ts";
import { nodeAddressOf, type LabState } from "./state.ts";
import { LB_POOL, LB_POOL6 } from "./services.ts";
import { ns } from "./topology.ts";

/** The next hops (node addresses) for each LoadBalancer address of the lab's Services. */
export function loadBalancerRoutes(s: LabState, services: KubeService[], slices: KubeEndpointSlice[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const svc of services) {
    if (svc.spec?.type !== "LoadBalancer") continue;
    const local = svc.spec.externalTrafficPolicy === "Local";
    const withEndpoints = new Set(
      slices
        .filter((sl) => sl.metadata.namespace === (svc.metadata.namespace ?? "default") && sl.metadata.labels?.["kubernetes.io/service-name"] === svc.metadata.name)
        .flatMap((sl) => (sl.endpoints ?? []).filter((e) => e.conditions?.ready !== false).map((e) => e.nodeName ?? "")),
    );
    for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
      if (!ing.ip) continue;
      const family = ing.ip.includes(":") ? 6 : 4;
      const hops = s.nodes.filter((n) => !local || withEndpoints.has(n.name)).map((n) => nodeAddressOf(n, family)).filter((a): a is string => a !== undefined);
      out.set(ing.ip, hops);
    }
  }
  return out;
}

/** Makes the router's routes of the LoadBalancer pools what loadBalancerRoutes says (replaced, added, removed). */
export function syncLoadBalancerRoutes(s: LabState, services: KubeService[], slices: KubeEndpointSlice[]): void {
  const rtr = ns.router(s.name);
  const want = loadBalancerRoutes(s, services, slices);
  const lines: string[] = [];
  for (const [pool, family] of [[LB_POOL, 4], [LB_POOL6, 6]] as const) {
    if (family === 6 && !s.options.clusterCidr6) continue;
    const have = ipJson<{ dst: string }[]>(rtr, ["route", "show", "root", pool]);
    for (const r of have) {
      const ip = r.dst.split("/")[0]!;
      if (!want.get(ip)?.length) lines.push(`route del ${r.dst}`);
    }
  }
  for (const [ip, hops] of want) {
    if (hops.length === 0) continue;
    const family = ip.includes(":") ? 6 : 4;
    const host = `${ip}/${family === 4 ? 32 : 128}`;
    // ip takes the family from the addresses (a batch line has no -4/-6).
    lines.push(hops.length === 1 ? `route replace ${host} via ${hops[0]}` : `route replace ${host} ${hops.map((h) => `nexthop via ${h}`).join(" ")}`);
  }
  if (lines.length) ipBatch(rtr, lines);
}
