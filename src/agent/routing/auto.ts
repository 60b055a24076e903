// auto: per peer and family, a direct route (host-gw) when the peer's InternalIP is on a
// subnet this node is connected to, the VXLAN tunnel otherwise, as Calico's VXLANCrossSubnet
// and Flannel's DirectRouting. The choice is remade every pass from the Nodes and this node's
// addresses, so a peer that moves subnet changes path; host-gw's and VXLAN's ownership rules
// differ (a gateway on a connected subnet vs an onlink one), so each part's pass changes only
// its own routes and a peer moving from one to the other is added by one, removed by the other.
import { connectedSubnets, emptyReport, type Peer, type PeerPath, type RoutingBackend, type RoutingInput, type RoutingReport, type LocalAddr } from "./backend.ts";
import { hostGw } from "./hostgw.ts";
import { applyRouteDiff } from "./routes.ts";
import { CIDRIndex } from "../../net/cidr.ts";
import { familyOf } from "../../net/ip.ts";

/**
 * The path to a peer's pod CIDR of one family: "tunnel" only when the peer has an InternalIP
 * of that family, not one of ours, and outside every connected subnet. Anything else is
 * "direct", where host-gw serves it or reports why it cannot. Pure.
 */
export function pathTo(peerIPs: readonly string[], podCIDR: string, localAddrs: readonly LocalAddr[], subnets = connectedIndex(localAddrs)): PeerPath {
  const family = familyOf(podCIDR);
  const ip = peerIPs.find((a) => familyOf(a) === family);
  if (!ip || localAddrs.some((a) => a.address === ip)) return "direct";
  return subnets.container(ip) === undefined ? "tunnel" : "direct";
}

function connectedIndex(localAddrs: readonly LocalAddr[]): CIDRIndex<string> {
  const idx = new CIDRIndex<string>();
  for (const s of connectedSubnets(localAddrs)) idx.add(s, s);
  return idx;
}

/** The peers split by path, each keeping only the pod CIDRs reached that way. Pure. */
export function splitPeers(input: RoutingInput): { direct: Peer[]; tunnel: Peer[] } {
  const subnets = connectedIndex(input.localAddrs);
  const direct: Peer[] = [];
  const tunnel: Peer[] = [];
  for (const p of input.peers) {
    const d = { ...p, podCIDRs: [] as string[] };
    const t = { ...p, podCIDRs: [] as string[] };
    for (const c of p.podCIDRs) (pathTo(p.internalIPs, c, input.localAddrs, subnets) === "tunnel" ? t : d).podCIDRs.push(c);
    direct.push(d);
    tunnel.push(t);
  }
  return { direct, tunnel };
}

function merge(a: RoutingReport, b: RoutingReport): RoutingReport {
  const paths = new Map(a.paths);
  // A dual-stack peer reached directly in one family and tunnelled in the other shows as "tunnel".
  for (const [n, p] of b.paths) if (p === "tunnel" || !paths.has(n)) paths.set(n, p);
  return {
    writes: a.writes + b.writes,
    changes: [...a.changes, ...b.changes],
    errors: [...a.errors, ...b.errors],
    problems: [...a.problems, ...b.problems],
    routes: a.routes + b.routes,
    paths,
    ...(a.published || b.published ? { published: { ...a.published, ...b.published } } : {}),
  };
}

export function autoBackend(vxlan: RoutingBackend): RoutingBackend {
  return {
    name: "auto",
    // Pods may need the tunnel as soon as a Node joins on another subnet, and a pod keeps the
    // MTU it was created with: the pod MTU always leaves room for VXLAN (as Calico does).
    mtuOverhead: (f) => vxlan.mtuOverhead(f),
    ownsRoute: (r) => hostGw.ownsRoute(r) || vxlan.ownsRoute(r),
    parts: [hostGw, vxlan],
    reconcile(input, nl) {
      const { direct, tunnel } = splitPeers(input);
      // A pod CIDR whose path changed has the other part's route to the same destination: it
      // goes first, or the new route would collide with it (EEXIST) until the next pass.
      const moved = emptyReport();
      const toTunnel = new Set(tunnel.flatMap((p) => p.podCIDRs));
      const toDirect = new Set(direct.flatMap((p) => p.podCIDRs));
      const stale = nl.routes().filter((r) => (hostGw.ownsRoute(r) && toTunnel.has(r.dst)) || (vxlan.ownsRoute(r) && toDirect.has(r.dst)));
      applyRouteDiff(nl, { add: [], change: [], remove: stale }, moved);
      const d = hostGw.reconcile({ ...input, peers: direct }, nl);
      const t = vxlan.reconcile({ ...input, peers: tunnel }, nl);
      return merge(merge(moved, d), t);
    },
    remove: (nl) => merge(hostGw.remove(nl), vxlan.remove(nl)),
  };
}
