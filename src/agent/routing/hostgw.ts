// host-gw routing: every other Node's pod CIDRs are reached through that Node's InternalIP,
// which must be on a directly connected subnet (the nodes share an L2 underlay).
// Ownership: a route is mncni's host-gw route when it carries RTPROT_MNCNI *and* a gateway,
// in the main table. The plugin's routed mode tags per-pod routes with the same protocol but
// never with a gateway, so the two never touch each other's routes.
import { CIDRIndex, familyOf } from "../cluster/cidr.ts";
import type { ClusterState } from "../cluster/types.ts";
import { RTPROT_MNCNI, isErrno, type Family, type Netlink, type RouteInfo } from "../kernel/index.ts";

export interface DesiredRoute {
  dst: string;
  gw: string;
  family: Family;
  /** The Node the pod CIDR belongs to, for logs. */
  node: string;
}

export interface LocalAddr {
  family: Family;
  cidr: string;
  address: string;
  prefixLen: number;
  scope: number;
}

export interface HostGwInput {
  self: string;
  state: ClusterState;
  /** This node's addresses: peers must be inside one of their subnets. */
  localAddrs: LocalAddr[];
}

export interface Desired<T> {
  items: T[];
  /** Peers (or this node) that cannot be served, each a complete sentence for logs. */
  problems: string[];
}

const RT_SCOPE_HOST = 254;

/** Subnets of this node's addresses (not host-scoped, not /32 or /128): where on-link peers live. */
function connectedSubnets(addrs: LocalAddr[]): CIDRIndex<string> {
  const idx = new CIDRIndex<string>();
  for (const a of addrs) if (a.scope !== RT_SCOPE_HOST && a.prefixLen < (a.family === 4 ? 32 : 128)) idx.add(a.cidr, a.cidr);
  return idx;
}

export function desiredHostGwRoutes({ self, state, localAddrs }: HostGwInput): Desired<DesiredRoute> {
  const problems: string[] = [];
  const items: DesiredRoute[] = [];
  const me = state.nodes.get(self);
  if (!me) problems.push(`node "${self}" is not in the cluster state: its own pod CIDRs are unknown`);
  const claimed = new CIDRIndex<{ cidr: string; node: string }>();
  for (const cidr of me?.podCIDRs ?? []) claimed.add(cidr, { cidr, node: self });
  const own = new Set(localAddrs.map((a) => a.address));
  const subnets = connectedSubnets(localAddrs);
  for (const name of [...state.nodes.keys()].sort()) {
    if (name === self) continue;
    const node = state.nodes.get(name)!;
    for (const dst of node.podCIDRs) {
      const family = familyOf(dst);
      const clash = claimed.overlapping(dst);
      if (clash) {
        problems.push(`cannot route pod CIDR "${dst}" of node "${name}": overlaps "${clash.cidr}" of node "${clash.node}"`);
        continue;
      }
      const gw = node.internalIPs.find((ip) => familyOf(ip) === family);
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
      claimed.add(dst, { cidr: dst, node: name });
      items.push({ dst, gw, family, node: name });
    }
  }
  return { items, problems };
}

export interface RouteDiff {
  add: DesiredRoute[];
  /** Routes we own whose gateway must change. */
  change: DesiredRoute[];
  remove: RouteInfo[];
}

/** Current routes that belong to host-gw (see the ownership note above). */
export function ownedRoutes(routes: RouteInfo[]): RouteInfo[] {
  return routes.filter((r) => r.protocol === RTPROT_MNCNI && r.gw !== undefined && r.table === 254 && r.type === "unicast");
}

export function diffRoutes(desired: DesiredRoute[], current: RouteInfo[]): RouteDiff {
  const have = new Map<string, RouteInfo>();
  const remove: RouteInfo[] = [];
  for (const r of ownedRoutes(current)) {
    // Two owned routes to one dst (different metrics) cannot both be right: keep one.
    if (have.has(r.dst)) remove.push(r);
    else have.set(r.dst, r);
  }
  const add: DesiredRoute[] = [];
  const change: DesiredRoute[] = [];
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(d.dst);
    const h = have.get(d.dst);
    if (!h) add.push(d);
    else if (h.gw !== d.gw) change.push(d);
  }
  for (const [dst, r] of have) if (!wanted.has(dst)) remove.push(r);
  return { add, change, remove };
}

export type RouteKernel = Pick<Netlink, "routes" | "addRoute" | "replaceRoute" | "delRoute" | "addrs">;

export interface ApplyResult {
  writes: number;
  errors: string[];
}

export function applyRouteDiff(nl: RouteKernel, diff: RouteDiff): ApplyResult {
  const res: ApplyResult = { writes: 0, errors: [] };
  const attempt = (what: string, fn: () => void, onErr?: (e: unknown) => string | undefined) => {
    res.writes++;
    try {
      fn();
    } catch (e) {
      const msg = onErr?.(e) ?? `cannot ${what}: ${(e as Error).message}`;
      if (msg) res.errors.push(msg);
    }
  };
  for (const r of diff.remove) {
    // Already gone (someone else removed it) is what we wanted.
    attempt(`delete route "${r.dst}" via "${r.gw}"`, () => nl.delRoute({ dst: r.dst, gw: r.gw, family: r.family, protocol: RTPROT_MNCNI, table: r.table }),
      (e) => (isErrno(e, "ESRCH") ? "" : undefined));
  }
  for (const d of diff.add) {
    attempt(`add route "${d.dst}" via "${d.gw}"`, () => nl.addRoute({ dst: d.dst, gw: d.gw, protocol: RTPROT_MNCNI }), (e) =>
      isErrno(e, "EEXIST") ? `cannot add route "${d.dst}" via "${d.gw}" (node "${d.node}"): a route to "${d.dst}" not owned by mncni exists; leaving it alone`
      : isErrno(e, "ENETUNREACH") ? `cannot add route "${d.dst}" via "${d.gw}" (node "${d.node}"): gateway not reachable (not on-link)`
      : undefined);
  }
  for (const d of diff.change) {
    attempt(`replace route "${d.dst}" via "${d.gw}"`, () => nl.replaceRoute({ dst: d.dst, gw: d.gw, protocol: RTPROT_MNCNI }));
  }
  return res;
}
