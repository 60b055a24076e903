// The route mechanism routing backends share: desired routes keyed by destination, diffed
// against the routes a backend owns (its own rule decides which), and the difference applied.
// host-gw routes carry a gateway; a device backend's carry an output link instead.
import { RTPROT_MNCNI, isErrno, type RouteInfo } from "../../kernel/index.ts";
import type { RoutingKernel, RoutingReport } from "./backend.ts";
import type { Family } from "../../net/ip.ts";

export interface DesiredRoute {
  dst: string;
  gw?: string;
  /** Output link index, for routes through a device (no gateway). */
  oif?: number;
  /** The gateway is reached through oif without a subnet containing it (VXLAN's VTEP gateway). */
  onlink?: boolean;
  family: Family;
  /** The Node the pod CIDR belongs to, for logs. */
  node: string;
}

export interface RouteDiff {
  add: DesiredRoute[];
  /** Owned routes whose next hop must change. */
  change: DesiredRoute[];
  remove: RouteInfo[];
}

const nextHop = (r: { gw?: string; oif?: number; onlink?: boolean }) => (r.gw !== undefined ? `via ${r.gw}${r.onlink ? ` dev #${r.oif} onlink` : ""}` : `dev #${r.oif}`);
const quotedHop = (r: { gw?: string; oif?: number }) => (r.gw !== undefined ? `via "${r.gw}"` : `dev #${r.oif}`);

export function diffRoutes(desired: DesiredRoute[], current: RouteInfo[], owns: (r: RouteInfo) => boolean): RouteDiff {
  const have = new Map<string, RouteInfo>();
  const remove: RouteInfo[] = [];
  for (const r of current) {
    if (!owns(r)) continue;
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
    else if (h.gw !== d.gw || (d.oif !== undefined && h.oif !== d.oif)) change.push(d);
  }
  for (const [dst, r] of have) if (!wanted.has(dst)) remove.push(r);
  return { add, change, remove };
}

/** Applies a diff; counts writes, words changes for logs, collects errors. */
export function applyRouteDiff(nl: RoutingKernel, diff: RouteDiff, rep: RoutingReport): void {
  const attempt = (what: string, fn: () => void, onErr?: (e: unknown) => string | undefined) => {
    rep.writes++;
    try {
      fn();
    } catch (e) {
      const msg = onErr?.(e) ?? `cannot ${what}: ${(e as Error).message}`;
      if (msg) rep.errors.push(msg);
    }
  };
  for (const r of diff.remove) {
    // Already gone (someone else removed it) is what we wanted.
    attempt(`delete route "${r.dst}" ${quotedHop(r)}`, () => nl.delRoute({ dst: r.dst, gw: r.gw, oif: r.oif, family: r.family, protocol: RTPROT_MNCNI, table: r.table }),
      (e) => (isErrno(e, "ESRCH") ? "" : undefined));
  }
  for (const d of diff.add) {
    const where = `route "${d.dst}" ${quotedHop(d)} (node "${d.node}")`;
    attempt(`add route "${d.dst}" ${quotedHop(d)}`, () => nl.addRoute({ dst: d.dst, gw: d.gw, oif: d.oif, onlink: d.onlink, protocol: RTPROT_MNCNI }), (e) =>
      isErrno(e, "EEXIST") ? `cannot add ${where}: a route to "${d.dst}" not owned by mncni exists; leaving it alone`
      : isErrno(e, "ENETUNREACH") ? `cannot add ${where}: gateway not reachable (not on-link)`
      : undefined);
  }
  for (const d of diff.change) {
    attempt(`replace route "${d.dst}" ${quotedHop(d)}`, () => nl.replaceRoute({ dst: d.dst, gw: d.gw, oif: d.oif, onlink: d.onlink, protocol: RTPROT_MNCNI }));
  }
  for (const d of diff.add) rep.changes.push(`add route ${d.dst} ${nextHop(d)} (node ${d.node})`);
  for (const d of diff.change) rep.changes.push(`change route ${d.dst} ${nextHop(d)} (node ${d.node})`);
  for (const r of diff.remove) rep.changes.push(`remove route ${r.dst} ${nextHop(r)}`);
}

/** Brings the kernel's owned routes to `desired`; the report's route count is what is owned after. */
export function syncRoutes(nl: RoutingKernel, desired: DesiredRoute[], owns: (r: RouteInfo) => boolean, rep: RoutingReport): void {
  const current = nl.routes();
  const diff = diffRoutes(desired, current, owns);
  const before = rep.writes;
  applyRouteDiff(nl, diff, rep);
  rep.routes = (rep.writes === before ? current : nl.routes()).filter(owns).length;
}
