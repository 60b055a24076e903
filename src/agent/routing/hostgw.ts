// host-gw: every other node's pod CIDRs are reached through that node's InternalIP, which must
// be on a directly connected subnet (the nodes share an L2 underlay). No encapsulation.
// Ownership: a route is host-gw's when it carries RTPROT_MNCNI *and* a gateway, in the main
// table, and is not "onlink". The plugin's routed mode tags per-pod routes with the same
// protocol but never with a gateway, and VXLAN's routes name an onlink gateway on its device,
// so none of them touch each other's routes.
import { RTPROT_MNCNI, type RouteInfo } from "../../kernel/index.ts";
import { connectedSubnets, emptyReport, type RoutingBackend, type RoutingInput } from "./backend.ts";
import { syncRoutes, type DesiredRoute } from "./routes.ts";
import { familyOf } from "../../net/ip.ts";
import { CIDRIndex } from "../../net/cidr.ts";

const MAIN_TABLE = 254;

export interface Desired<T> {
  items: T[];
  /** Peers that cannot be served, each a complete sentence for logs. */
  problems: string[];
}

/** Routes to the admitted pod CIDRs of on-link peers. Pure. */
export function desiredHostGwRoutes({ peers, localAddrs }: RoutingInput): Desired<DesiredRoute> {
  const problems: string[] = [];
  const items: DesiredRoute[] = [];
  const own = new Set(localAddrs.map((a) => a.address));
  // Where on-link peers live.
  const subnets = new CIDRIndex<string>();
  for (const s of connectedSubnets(localAddrs)) subnets.add(s, s);
  for (const { name, podCIDRs, internalIPs } of peers) {
    for (const dst of podCIDRs) {
      const family = familyOf(dst);
      const gw = internalIPs.find((ip) => familyOf(ip) === family);
      if (!gw) {
        problems.push(`cannot route pod CIDR "${dst}" of node "${name}": the node has no IPv${family} InternalIP`);
        continue;
      }
      if (own.has(gw)) {
        problems.push(`cannot route pod CIDR "${dst}" of node "${name}": its InternalIP "${gw}" is an address of this node`);
        continue;
      }
      if (subnets.container(gw) === undefined) {
        problems.push(`cannot route pod CIDR "${dst}" of node "${name}" via "${gw}": not on-link (no local subnet contains it; host-gw needs nodes on one L2 network)`);
        continue;
      }
      items.push({ dst, gw, family, node: name });
    }
  }
  return { items, problems };
}

const owns = (r: RouteInfo) => r.protocol === RTPROT_MNCNI && r.gw !== undefined && !r.onlink && r.table === MAIN_TABLE && r.type === "unicast";

export const hostGw: RoutingBackend = {
  name: "host-gw",
  mtuOverhead: () => 0,
  ownsRoute: owns,
  reconcile(input, nl) {
    const rep = emptyReport();
    const desired = desiredHostGwRoutes(input);
    rep.problems.push(...desired.problems);
    syncRoutes(nl, desired.items, owns, rep);
    for (const d of desired.items) rep.paths.set(d.node, "direct");
    return rep;
  },
  remove(nl) {
    const rep = emptyReport();
    syncRoutes(nl, [], owns, rep);
    return rep;
  },
};
