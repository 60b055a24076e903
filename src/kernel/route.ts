// Routes (RTM_*ROUTE), IPv4 and IPv6 through the same code.
import {
  RTA, RTAX, RTMSG_LEN, RTM_F_CLONED, RTN_NAMES, RTNH_F_ONLINK, RTPROT, RT_SCOPE, RT_TABLE, NLM_F, RTM,
  msgAttrs, u8At, u32At, type Msg,
} from "./codec.ts";
import { afOf, familyOfAf } from "./constants.ts";
import { maskCIDR } from "../net/cidr.ts";
import { formatCIDR, formatIP, parseCIDR, parseIP, type Family } from "../net/ip.ts";
import type { NetlinkSocket } from "./socket.ts";

export type RouteType = (typeof RTN_NAMES)[number];
export type ScopeName = "universe" | "site" | "link" | "host" | "nowhere";

export interface RouteSpec {
  /** CIDR, or "default" (family from gw, src or the family field; IPv4 if none). */
  dst: string;
  family?: Family;
  gw?: string;
  oif?: number;
  /** Default: "host" for local routes, "link" for routes without gw, else "universe". */
  scope?: ScopeName | number;
  /** Default: main (254). */
  table?: number;
  /** The metric. */
  priority?: number;
  /** Default when adding: RTPROT_BOOT (3), as `ip route add`. */
  protocol?: number;
  onlink?: boolean;
  /** Preferred source address (RTA_PREFSRC). */
  src?: string;
  mtu?: number;
  advmss?: number;
  /** Default: "unicast". */
  type?: RouteType;
}

export interface RouteInfo extends RouteSpec {
  family: Family;
  /** Always a CIDR: "0.0.0.0/0" / "::/0" for default routes. */
  dst: string;
  table: number;
  protocol: number;
  scope: number;
  type: RouteType;
}

export interface RouteFilter {
  family?: Family;
  /** Default: main (254); 0 lists every table. */
  table?: number;
  protocol?: number;
  oif?: number;
}

const SCOPES: Record<ScopeName, number> = {
  universe: RT_SCOPE.UNIVERSE, site: RT_SCOPE.SITE, link: RT_SCOPE.LINK, host: RT_SCOPE.HOST, nowhere: RT_SCOPE.NOWHERE,
};

function scopeOf(s: ScopeName | number): number {
  if (typeof s === "number") return s;
  const v = SCOPES[s];
  if (v === undefined) throw new TypeError(`cannot use route scope "${s}": unknown scope`);
  return v;
}

function typeOf(t: RouteType | undefined): number {
  const v = RTN_NAMES.indexOf(t ?? "unicast");
  if (v < 0) throw new TypeError(`cannot use route type "${t}": unknown type`);
  return v;
}

function routeFamily(r: RouteSpec): Family {
  if (r.dst !== "default") return parseCIDR(r.dst).family;
  if (r.family) return r.family;
  if (r.gw) return parseIP(r.gw).family;
  if (r.src) return parseIP(r.src).family;
  return 4;
}

type Verb = "add" | "replace" | "delete";

function writeRoute(sock: NetlinkSocket, verb: Verb, r: RouteSpec): void {
  const family = routeFamily(r);
  const dst = r.dst === "default" ? undefined : maskCIDR(parseCIDR(r.dst, family));
  const gw = r.gw !== undefined ? parseIP(r.gw, family) : undefined;
  const type = typeOf(r.type);
  const table = r.table ?? RT_TABLE.MAIN;
  const del = verb === "delete";
  // Deleting matches on what is given: NOWHERE and protocol 0 are the kernel's wildcards.
  let scope: number;
  if (r.scope !== undefined) scope = scopeOf(r.scope);
  else if (del) scope = RT_SCOPE.NOWHERE;
  else if (type === 2 /* local */) scope = RT_SCOPE.HOST;
  else if (type === 1 && !gw) scope = RT_SCOPE.LINK;
  else scope = RT_SCOPE.UNIVERSE;
  const nlFlags =
    verb === "add" ? NLM_F.CREATE | NLM_F.EXCL | NLM_F.ACK
    : verb === "replace" ? NLM_F.CREATE | NLM_F.REPLACE | NLM_F.ACK
    : NLM_F.ACK;
  const w = sock.begin(del ? RTM.DELROUTE : RTM.NEWROUTE, nlFlags).rtmsg({
    family: afOf(family),
    dstLen: dst?.prefixLen ?? 0,
    table: table < 256 ? table : RT_TABLE.UNSPEC,
    protocol: r.protocol ?? (del ? RTPROT.UNSPEC : RTPROT.BOOT),
    scope,
    type: del && r.type === undefined ? 0 : type,
    flags: r.onlink && !del ? RTNH_F_ONLINK : 0,
  });
  w.attrU32(RTA.TABLE, table);
  if (dst) w.attrBytes(RTA.DST, dst.bytes);
  if (gw) w.attrBytes(RTA.GATEWAY, gw.bytes);
  if (r.oif !== undefined) w.attrU32(RTA.OIF, r.oif);
  if (r.priority !== undefined) w.attrU32(RTA.PRIORITY, r.priority);
  if (r.src !== undefined) w.attrBytes(RTA.PREFSRC, parseIP(r.src, family).bytes);
  if (!del && (r.mtu !== undefined || r.advmss !== undefined)) {
    const m = w.nestStart(RTA.METRICS);
    if (r.mtu !== undefined) w.attrU32(RTAX.MTU, r.mtu);
    if (r.advmss !== undefined) w.attrU32(RTAX.ADVMSS, r.advmss);
    w.nestEnd(m);
  }
  sock.exec(`${verb} route "${r.dst}"${r.gw ? ` via ${r.gw}` : ""}${r.oif !== undefined ? ` dev ${r.oif}` : ""}`);
}

export const addRoute = (sock: NetlinkSocket, r: RouteSpec): void => writeRoute(sock, "add", r);
export const replaceRoute = (sock: NetlinkSocket, r: RouteSpec): void => writeRoute(sock, "replace", r);
export const delRoute = (sock: NetlinkSocket, r: RouteSpec): void => writeRoute(sock, "delete", r);

/** cloned: keep a route the kernel computed for one flow (the answer to RTM_GETROUTE). */
export function parseRoute(m: Msg, o: { cloned?: boolean } = {}): RouteInfo | undefined {
  if (m.type !== RTM.NEWROUTE) return undefined;
  const family = familyOfAf(u8At(m, 0));
  if (!family || (!o.cloned && u32At(m, 8) & RTM_F_CLONED)) return undefined;
  const a = msgAttrs(m, RTMSG_LEN);
  const dstLen = u8At(m, 1);
  const dst = a.bytes(RTA.DST) ?? new Uint8Array(family === 4 ? 4 : 16);
  const r: RouteInfo = {
    family,
    dst: formatCIDR(dst, dstLen, family),
    table: a.u32(RTA.TABLE) ?? u8At(m, 4),
    protocol: u8At(m, 5),
    scope: u8At(m, 6),
    type: RTN_NAMES[u8At(m, 7)] ?? "unspec",
  };
  const gw = a.bytes(RTA.GATEWAY);
  if (gw) r.gw = formatIP(gw, family);
  const oif = a.u32(RTA.OIF);
  if (oif !== undefined) r.oif = oif;
  const prio = a.u32(RTA.PRIORITY);
  if (prio !== undefined) r.priority = prio;
  const src = a.bytes(RTA.PREFSRC);
  if (src) r.src = formatIP(src, family);
  if (u32At(m, 8) & RTNH_F_ONLINK) r.onlink = true;
  const metrics = a.nested(RTA.METRICS);
  if (metrics) {
    const mtu = metrics.u32(RTAX.MTU);
    if (mtu !== undefined) r.mtu = mtu;
    const advmss = metrics.u32(RTAX.ADVMSS);
    if (advmss !== undefined) r.advmss = advmss;
  }
  return r;
}

export function routes(sock: NetlinkSocket, o: RouteFilter = {}): RouteInfo[] {
  const af = o.family ? afOf(o.family) : 0;
  const table = o.table ?? RT_TABLE.MAIN;
  return sock.dump("list routes", RTM.GETROUTE, (w) => w.rtmsg({ family: af }), (m) => {
    const r = parseRoute(m);
    if (!r) return undefined;
    if (table !== 0 && r.table !== table) return undefined;
    if (o.protocol !== undefined && r.protocol !== o.protocol) return undefined;
    if (o.oif !== undefined && r.oif !== o.oif) return undefined;
    return r;
  });
}

/** A flow to look up as the kernel would route it (`ip route get`). */
export interface RouteQuery {
  dst: string;
  /** The packet's source address (a forwarded packet's, with iif). */
  src?: string;
  /** Set: the packet arrives on this interface (forwarding lookup, rp_filter applies); else it is sent locally. */
  iif?: number;
  oif?: number;
  /** IPPROTO number, and ports, for policy routing on them. */
  proto?: number;
  dport?: number;
  sport?: number;
  mark?: number;
}

const RTA_MARK = 16;
const RTA_IP_PROTO = 27;
const RTA_SPORT = 28;
const RTA_DPORT = 29;

/**
 * The route the kernel picks for one packet (RTM_GETROUTE, not a re-implementation of the
 * lookup): its type ("unicast", "local", "unreachable"...), device, gateway and preferred
 * source. A lookup that fails (no route, rp_filter) throws NetlinkError with the errno.
 */
export function getRoute(sock: NetlinkSocket, q: RouteQuery): RouteInfo {
  const dst = parseIP(q.dst);
  const src = q.src !== undefined ? parseIP(q.src, dst.family) : undefined;
  const w = sock.begin(RTM.GETROUTE, 0).rtmsg({ family: afOf(dst.family), dstLen: dst.bytes.length * 8, srcLen: src ? src.bytes.length * 8 : 0 });
  w.attrBytes(RTA.DST, dst.bytes);
  if (src) w.attrBytes(RTA.SRC, src.bytes);
  if (q.iif !== undefined) w.attrU32(RTA.IIF, q.iif);
  if (q.oif !== undefined) w.attrU32(RTA.OIF, q.oif);
  if (q.mark !== undefined) w.attrU32(RTA_MARK, q.mark);
  if (q.proto !== undefined) w.attrU8(RTA_IP_PROTO, q.proto);
  if (q.sport !== undefined) w.attrBe16(RTA_SPORT, q.sport);
  if (q.dport !== undefined) w.attrBe16(RTA_DPORT, q.dport);
  let out: RouteInfo | undefined;
  sock.exec(`get route to "${q.dst}"${q.src ? ` from ${q.src}` : ""}${q.iif !== undefined ? ` iif ${q.iif}` : ""}`, (m) => {
    out = parseRoute(m, { cloned: true });
  });
  if (!out) throw new Error(`cannot get route to "${q.dst}": no answer from the kernel`);
  return out;
}
