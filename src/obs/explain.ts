// `mncni explain SRC DST`: the path of one packet, hop by hop. In each namespace the route is
// the kernel's answer to RTM_GETROUTE for that packet (real source, arriving interface), not
// a re-implementation of routing; the next namespace is the one owning the next hop's
// address (or the other end of the veth). Anti-spoofing and masquerade are read from the
// sets and rules mncni owns. With a probe, a real packet marked for nftables tracing is sent
// and the kernel's trace events in every namespace of the path are compared with the
// computed path; any difference is reported.
import { encodeKey, Netlink, NetlinkError, Nftables, TraceListener, type Link, type NeighInfo, type RouteInfo, type TraceEvent } from "../kernel/index.ts";
import { cidrContains } from "../net/cidr.ts";
import { formatIP } from "../net/ip.ts";
import { HOST_VETH_PREFIX } from "../plugin/hostveth.ts";
import { nftIn, ruleText } from "./nft-in.ts";
import { sendProbe, type ProbeProto } from "./probe.ts";
import { bold, dim, green, red, yellow } from "./render.ts";

export interface Place {
  name: string;
  /** Namespace path; undefined: this process's. */
  netns?: string;
  kind: "pod" | "node" | "router" | "external" | "host";
  /** A pod's node and the name of its host veth there: how its veth pair is recognised. */
  node?: string;
  hostVeth?: string;
}

export interface Endpoint {
  /** undefined: outside every known namespace (explain stops where the packet leaves). */
  place?: Place;
  ip: string;
}

export interface Hop {
  place: string;
  kind: Place["kind"];
  /** The interface the packet arrives on (absent where it is sent). */
  iif?: string;
  /** For a packet from a pod: the host port it entered the node by. */
  port?: string;
  source: string;
  route?: { type: string; dev?: string; gw?: string; prefsrc?: string; table: number };
  neighbour?: { ip: string; mac?: string; state: string };
  fdb?: { mac: string; port: string };
  /** How it reaches the next namespace: over a link, or through a tunnel device. */
  via?: "direct" | "tunnel";
  next?: string;
  masquerade?: { to: string; rule: string };
  /** nftables decisions that stop it here (anti-spoofing, a policy). */
  dropped?: string;
  /** Where policy enforcement names its verdict (EXPLAIN_POLICY_HOOK). */
  policy?: string;
  delivered?: boolean;
  /** Switched by this bridge, not routed. */
  bridged?: string;
  error?: string;
}

export interface TracedPlace {
  place: string;
  events: { table: string; chain: string; type: string; verdict?: string; rule?: string; saddr?: string; daddr?: string }[];
  verdict: "accepted" | "dropped" | "not seen";
  droppedBy?: string;
}

export interface Explanation {
  src: string;
  dst: string;
  proto: ProbeProto;
  port: number;
  hops: Hop[];
  outcome: "delivered" | "dropped" | "leaves" | "unreachable";
  probe?: { places: TracedPlace[]; outcome: string; mismatches: string[] };
}

/**
 * Where a policy engine names its verdict for a packet entering a namespace. Policy
 * enforcement is built separately: it sets verdictFor; explain shows what it returns.
 */
export const EXPLAIN_POLICY_HOOK: { verdictFor?: (p: { place: Place; src: string; dst: string; proto: ProbeProto; port: number }) => { drop: boolean; policy: string } | undefined } = {};

const PROTO_NUM: Record<ProbeProto, number> = { icmp: 1, tcp: 6, udp: 17 };
const NUD_NAMES: Record<number, string> = { 1: "incomplete", 2: "reachable", 4: "stale", 8: "delay", 16: "probe", 32: "failed", 64: "noarp", 128: "permanent" };

interface PlaceState {
  place: Place;
  nl: Netlink;
  links: Link[];
  addrs: { ip: string; index: number }[];
}

class World {
  readonly states = new Map<string, PlaceState>();
  constructor(places: Place[]) {
    for (const p of places) {
      const nl = Netlink.open(p.netns);
      this.states.set(p.name, { place: p, nl, links: nl.links(), addrs: nl.addrs().map((a) => ({ ip: a.address, index: a.index })) });
    }
  }
  close(): void {
    for (const s of this.states.values()) s.nl.close();
  }
  owner(ip: string, not: string): { s: PlaceState; index: number } | undefined {
    for (const s of this.states.values()) {
      if (s.place.name === not) continue;
      const a = s.addrs.find((x) => x.ip === ip);
      if (a) return { s, index: a.index };
    }
    return undefined;
  }
  /** The other end of veth `l` of place `from`: a veth elsewhere whose peer is l and whose index is l's peer. */
  peer(from: PlaceState, l: Link): { s: PlaceState; link: Link } | undefined {
    if (l.kind !== "veth" || l.peerIndex === undefined) return undefined;
    // Interface indexes are per namespace and small: two unrelated veths can point at each
    // other's numbers. Only a pod and its node's host veth (mncni's name) are paired.
    const isPod = from.place.kind === "pod";
    if (!isPod && !l.name.startsWith(HOST_VETH_PREFIX)) return undefined;
    for (const s of this.states.values()) {
      if (s === from || (s.place.kind === "pod") === isPod) continue;
      // Known pods are paired by name: their node and host veth, never by indexes alone.
      const pod = isPod ? from.place : s.place;
      const node = isPod ? s.place : from.place;
      if (pod.node !== undefined && pod.node !== node.name) continue;
      if (pod.hostVeth !== undefined && pod.hostVeth !== (isPod ? l.peerIndex && s.links.find((x) => x.index === l.peerIndex)?.name : l.name)) continue;
      const link = s.links.find((x) => x.kind === "veth" && x.index === l.peerIndex && x.peerIndex === l.index && (!isPod || x.name.startsWith(HOST_VETH_PREFIX)));
      if (link) return { s, link };
    }
    return undefined;
  }
}

const name = (s: PlaceState, index: number | undefined) => (index === undefined ? undefined : (s.links.find((l) => l.index === index)?.name ?? String(index)));

/** Anti-spoofing as the node's own sets say: is `src` allowed from `port`? */
function antiSpoofVerdict(s: PlaceState, port: string, src: string): string | undefined {
  const nft = Nftables.open(s.place.netns);
  try {
    return antiSpoofIn(nft, port, src);
  } finally {
    nft.close();
  }
}

function antiSpoofIn(nft: Nftables, port: string, src: string): string | undefined {
  for (const family of ["bridge", "inet", "netdev"] as const) {
    if (!nft.table(family, "mncni-antispoof")) continue;
    const guarded = nft.hasSetElement({ family, table: "mncni-antispoof", set: "ports" }, encodeKey(["ifname"], [port]));
    if (!guarded) return undefined;
    const v6 = src.includes(":");
    const ok = nft.hasSetElement({ family, table: "mncni-antispoof", set: v6 ? "addr6" : "addr4" }, encodeKey(["ifname", v6 ? "ipv6_addr" : "ipv4_addr"], [port, src]));
    return ok ? undefined : `anti-spoofing (${family} mncni-antispoof): source ${src} is not in @${v6 ? "addr6" : "addr4"} for port ${port}`;
  }
  return undefined;
}

interface NftJsonRule { rule: { comment?: string; expr: Record<string, any>[] } }

/** Does one payload match of mncni's masquerade rule hold for ip? (prefix, set of prefixes/addresses, address) */
function matchRight(right: any, ip: string): boolean {
  if (typeof right === "string") return right === ip || (right.includes("/") && cidrContains(right, ip));
  if (right?.prefix) return cidrContains(`${right.prefix.addr}/${right.prefix.len}`, ip);
  if (right?.set) return right.set.some((x: any) => matchRight(x, ip));
  return false;
}

/** The node's masquerade decision for a packet leaving it, from its `inet mncni` postrouting rules. */
function masqueradeOf(s: PlaceState, src: string, dst: string): string | undefined {
  const r = nftIn(s.place.netns, ["-j", "list", "chain", "inet", "mncni", "postrouting"]);
  if (r.code !== 0) return undefined;
  const rules = (JSON.parse(r.stdout).nftables as (NftJsonRule | object)[]).filter((x): x is NftJsonRule => "rule" in x);
  for (const rule of rules) {
    if (!rule.rule.expr.some((e) => "masquerade" in e)) continue;
    const holds = rule.rule.expr.every((e) => {
      if (!e.match) return true;
      const field = e.match.left?.payload?.field;
      if (field !== "saddr" && field !== "daddr") return true;
      const hit = matchRight(e.match.right, field === "saddr" ? src : dst);
      return e.match.op === "!=" ? !hit : hit;
    });
    if (holds) return rule.rule.comment ? `inet mncni postrouting "${rule.rule.comment}"` : "inet mncni postrouting masquerade";
  }
  return undefined;
}

export function computePath(places: Place[], src: Endpoint, dst: string, proto: ProbeProto, port: number): Explanation {
  const world = new World(places);
  const hops: Hop[] = [];
  let outcome: Explanation["outcome"] = "unreachable";
  try {
    let cur: PlaceState | undefined = src.place ? world.states.get(src.place.name) : undefined;
    if (!cur) throw new Error(`cannot explain from "${src.ip}": not in a namespace this command knows`);
    let iif: number | undefined;
    let port_: string | undefined;
    let source = src.ip;
    for (let step = 0; step < 16 && cur; step++) {
      const hop: Hop = { place: cur.place.name, kind: cur.place.kind, source };
      hops.push(hop);
      if (iif !== undefined) hop.iif = name(cur, iif);
      if (port_) hop.port = port_;
      if (port_) {
        const drop = antiSpoofVerdict(cur, port_, source);
        if (drop) {
          hop.dropped = drop;
          outcome = "dropped";
          break;
        }
      }
      const pol = EXPLAIN_POLICY_HOOK.verdictFor?.({ place: cur.place, src: source, dst, proto, port });
      if (pol) {
        hop.policy = pol.policy;
        if (pol.drop) {
          hop.dropped = `policy ${pol.policy}`;
          outcome = "dropped";
          break;
        }
      }
      let r: RouteInfo;
      try {
        // Where the packet is sent, a source that is not the namespace's own (a spoofing pod
        // sends it anyway, IP_TRANSPARENT) plays no part in the kernel's choice of route.
        const own = iif !== undefined || cur.addrs.some((a) => a.ip === source);
        r = cur.nl.getRoute({ dst, ...(source && own ? { src: source } : {}), ...(iif !== undefined ? { iif } : {}), proto: PROTO_NUM[proto], ...(proto !== "icmp" ? { dport: port } : {}) });
      } catch (e) {
        hop.error = e instanceof NetlinkError ? `no route: ${e.code}${e.code === "EXDEV" || e.code === "EINVAL" ? " (reverse-path filter refuses this source here)" : ""}` : (e as Error).message;
        break;
      }
      // A node as the source: the kernel's choice of source address for this destination.
      if (!source && r.src) source = hop.source = r.src;
      hop.route = { type: r.type, table: r.table, ...(r.oif !== undefined ? { dev: name(cur, r.oif) } : {}), ...(r.gw ? { gw: r.gw } : {}), ...(r.src ? { prefsrc: r.src } : {}) };
      if (r.type === "local") {
        hop.delivered = true;
        outcome = "delivered";
        break;
      }
      if (r.type !== "unicast" || r.oif === undefined) {
        hop.error = `route type ${r.type}`;
        break;
      }
      const nh: string = r.gw ?? dst;
      const n: NeighInfo | undefined = cur.nl.neighs({ index: r.oif }).find((x) => x.ip === nh);
      if (n) hop.neighbour = { ip: nh, ...(n.mac ? { mac: n.mac } : {}), state: NUD_NAMES[n.state] ?? String(n.state) };
      const out: Link = cur.links.find((l) => l.index === r.oif)!;
      hop.via = out.kind === "vxlan" || out.kind === "geneve" || out.kind === "wireguard" ? "tunnel" : "direct";
      if (out.kind === "bridge" && n?.mac) {
        const f: NeighInfo | undefined = cur.nl.neighs({ family: "bridge" }).find((x) => x.mac === n.mac && x.index !== out.index);
        if (f) hop.fdb = { mac: n.mac, port: name(cur, f.index)! };
      }
      if (cur.place.kind === "node") {
        const masq = masqueradeOf(cur, source, dst);
        // A forwarded packet's route carries no source: masquerade takes the one the node would send with.
        const to = masq ? (r.src ?? cur.nl.getRoute({ dst }).src) : undefined;
        if (masq && to) {
          hop.masquerade = { to, rule: masq };
          source = to;
        }
      }
      // The next namespace: whoever owns the next hop; else the far end of the veth.
      const own = world.owner(nh, cur.place.name);
      const viaPort: Link | undefined = hop.fdb ? cur.links.find((l) => l.name === hop.fdb!.port) : out;
      const peer: { s: PlaceState; link: Link } | undefined = viaPort ? world.peer(cur, viaPort) : undefined;
      const sendingPod = cur.place.kind === "pod";
      port_ = sendingPod && peer ? peer.link.name : undefined;
      if (own && peer && peer.s !== own.s) {
        // Bridged on the way: the veth's far end is a bridge port of another namespace (a node),
        // which switches the frame by its FDB without routing it.
        hop.next = peer.s.place.name;
        const b: Hop = { place: peer.s.place.name, kind: peer.s.place.kind, iif: peer.link.name, source };
        if (port_) b.port = port_;
        hops.push(b);
        const drop = port_ ? antiSpoofVerdict(peer.s, port_, source) : undefined;
        if (drop) {
          b.dropped = drop;
          outcome = "dropped";
          break;
        }
        const bridge = peer.s.links.find((l) => l.index === peer.link.master);
        const f = n?.mac ? peer.s.nl.neighs({ family: "bridge" }).find((x) => x.mac === n.mac && x.index !== peer.link.index) : undefined;
        if (f) b.fdb = { mac: n!.mac!, port: name(peer.s, f.index)! };
        b.bridged = bridge?.name ?? "?";
        b.via = "direct";
        b.next = own.s.place.name;
        port_ = undefined;
        iif = own.index;
        cur = own.s;
      } else if (own) {
        hop.next = own.s.place.name;
        iif = own.index;
        // A gateway address on a bridge: the packet arrives on the bridge, entered by the pod's port.
        cur = own.s;
      } else if (peer) {
        hop.next = peer.s.place.name;
        iif = peer.link.index;
        cur = peer.s;
      } else {
        hop.next = "outside";
        outcome = "leaves";
        break;
      }
    }
  } finally {
    world.close();
  }
  return { src: src.ip, dst, proto, port, hops, outcome };
}

const v4addr = (h: Uint8Array | undefined, off: number) => (h && h.length >= 20 && h[0]! >> 4 === 4 ? formatIP(h.slice(off, off + 4), 4) : undefined);

const TRACE_TABLE = "mncni-trace";

/** The rules that set nftrace on the probe's packets, in the families its hooks see first. */
function traceScript(dst: string, proto: ProbeProto, port: number): string {
  const match = `ip daddr ${dst} meta l4proto ${proto}${proto === "icmp" ? "" : ` th dport ${port}`} meta nftrace set 1`;
  return [
    `table inet ${TRACE_TABLE} {`,
    `  chain pre { type filter hook prerouting priority -450; ${match}; }`,
    `  chain out { type filter hook output priority -450; ${match}; }`,
    `}`,
    `table bridge ${TRACE_TABLE} {`,
    `  chain pre { type filter hook prerouting priority -450; ${match}; }`,
    `}`,
  ].join("\n");
}

/**
 * Sends the probe and reads what the kernel reports of it in each namespace. The trace
 * tables are mncni's own and removed afterwards, also when sending fails.
 */
export function probePath(places: Place[], ex: Explanation, spoof: boolean): NonNullable<Explanation["probe"]> {
  const byName = new Map(places.map((p) => [p.name, p]));
  const onPath = [...new Set(ex.hops.map((h) => h.place))].map((n) => byName.get(n)!).filter(Boolean);
  // Namespaces next to the path too: a packet that goes where it was not expected shows up there.
  const watched = [...onPath, ...places.filter((p) => p.kind !== "host" && !onPath.includes(p))];
  const script = traceScript(ex.dst, ex.proto, ex.port);
  const installed: Place[] = [];
  const listeners = new Map<string, TraceListener>();
  const traced: TracedPlace[] = [];
  try {
    for (const p of watched) {
      const r = nftIn(p.netns, ["-f", "-"], script);
      if (r.code !== 0) throw new Error(`cannot add table ${TRACE_TABLE} in "${p.name}": ${r.stderr.trim()}`);
      installed.push(p);
      listeners.set(p.name, TraceListener.open(p.netns));
    }
    const close = sendProbe({ netns: onPath[0]?.netns, src: ex.src, spoof, dst: ex.dst, proto: ex.proto, port: ex.port });
    try {
      const events = new Map<string, TraceEvent[]>();
      for (const [n, l] of listeners) events.set(n, l.read(250));
      for (const p of watched) {
        // Retransmissions are traced too: keep the first packet's events.
        const all = (events.get(p.name) ?? []).filter((e) => e.table !== TRACE_TABLE || e.type === "rule");
        // (Ids differ between the bridge and IP layers of one packet: a repeat of an event ends it.)
        const seenKeys = new Set<string>();
        const firstRepeat = all.findIndex((e) => {
          const k = `${e.family} ${e.table} ${e.chain} ${e.type} ${e.handle}`;
          if (seenKeys.has(k)) return true;
          seenKeys.add(k);
          return false;
        });
        const evs = firstRepeat < 0 ? all : all.slice(0, firstRepeat);
        const drop = evs.find((e) => e.verdict === "drop");
        const tp: TracedPlace = {
          place: p.name,
          // A "continue" with no rule is the kernel noting the packet went on: nothing decided.
          events: evs.filter((e) => e.table !== TRACE_TABLE && !(e.type === "rule" && e.handle === undefined && e.verdict === "continue")).map((e) => ({
            table: `${e.family} ${e.table}`,
            chain: e.chain,
            type: e.type,
            ...(e.verdict ? { verdict: e.verdict } : {}),
            ...(e.handle !== undefined ? { rule: ruleText(p.netns, String(e.family), e.table, e.chain, e.handle) ?? `handle ${e.handle}` } : {}),
            ...(v4addr(e.network, 12) ? { saddr: v4addr(e.network, 12), daddr: v4addr(e.network, 16) } : {}),
          })),
          verdict: evs.length === 0 ? "not seen" : drop ? "dropped" : "accepted",
        };
        if (drop) tp.droppedBy = `${drop.family} ${drop.table} ${drop.chain}: ${drop.handle !== undefined ? (ruleText(p.netns, String(drop.family), drop.table, drop.chain, drop.handle) ?? `handle ${drop.handle}`) : "chain policy"}`;
        const first = evs.find((e) => e.network);
        if (first && !tp.events.some((e) => e.saddr)) tp.events.unshift({ table: `${first.family} ${TRACE_TABLE}`, chain: first.chain, type: "seen", saddr: v4addr(first.network, 12)!, daddr: v4addr(first.network, 16)! });
        traced.push(tp);
      }
    } finally {
      close();
    }
  } finally {
    for (const l of listeners.values()) l.close();
    for (const p of installed) nftIn(p.netns, ["delete", "table", "inet", TRACE_TABLE]), nftIn(p.netns, ["delete", "table", "bridge", TRACE_TABLE]);
  }
  const seen = traced.filter((t) => t.verdict !== "not seen").map((t) => t.place);
  const dropAt = traced.find((t) => t.verdict === "dropped");
  const mismatches: string[] = [];
  const computed = ex.hops.map((h) => h.place);
  for (const p of computed) if (!seen.includes(p) && !(ex.outcome === "dropped" && p === computed[computed.length - 1] && dropAt)) mismatches.push(`computed path crosses "${p}", the traced packet was not seen there`);
  for (const p of seen) if (!computed.includes(p)) mismatches.push(`the traced packet was seen in "${p}", which the computed path does not cross`);
  if (dropAt && ex.outcome !== "dropped") mismatches.push(`the traced packet was dropped in "${dropAt.place}" by ${dropAt.droppedBy}; the computed path says ${ex.outcome}`);
  if (!dropAt && ex.outcome === "dropped") mismatches.push(`the computed path drops it in "${computed[computed.length - 1]}"; the traced packet was not dropped`);
  if (dropAt && ex.outcome === "dropped" && dropAt.place !== computed[computed.length - 1]) mismatches.push(`dropped in "${dropAt.place}", computed in "${computed[computed.length - 1]}"`);
  // Masquerade: the source seen after the node that masquerades must be its address.
  ex.hops.forEach((h, i) => {
    if (!h.next || h.next === "outside") return;
    const after = traced.find((t) => t.place === h.next);
    const seenSrc = after?.events.find((e) => e.saddr)?.saddr;
    const want = ex.hops[i + 1]?.source;
    if (seenSrc && want && seenSrc !== want) mismatches.push(`"${h.next}" saw source ${seenSrc}, computed ${want}`);
  });
  const outcome = dropAt ? `dropped in ${dropAt.place} by ${dropAt.droppedBy}` : seen.length ? `reached ${seen[seen.length - 1]}` : "not seen anywhere";
  return { places: traced.filter((t) => t.verdict !== "not seen" || computed.includes(t.place)), outcome, mismatches };
}

function hopLine(h: Hop): string[] {
  const head = `${bold(h.place)} ${dim(`(${h.kind})`)}${h.iif ? ` in ${h.iif}` : ""}${h.port && h.port !== h.iif ? ` from port ${h.port}` : ""}  src ${h.source}`;
  const lines = [head];
  if (h.dropped) lines.push(`  ${red(`dropped: ${h.dropped}`)}`);
  if (h.policy && !h.dropped) lines.push(`  policy: ${h.policy}`);
  if (h.error) lines.push(`  ${red(h.error)}`);
  if (h.route) {
    const r = h.route;
    lines.push(`  route: ${r.type}${r.gw ? ` via ${r.gw}` : ""}${r.dev ? ` dev ${r.dev}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.table !== 254 ? ` table ${r.table}` : ""}`);
  }
  if (h.neighbour) lines.push(`  neighbour: ${h.neighbour.ip} lladdr ${h.neighbour.mac ?? "-"} ${h.neighbour.state}`);
  if (h.bridged) lines.push(`  bridged on ${h.bridged}`);
  if (h.fdb) lines.push(`  fdb: ${h.fdb.mac} on port ${h.fdb.port}`);
  if (h.masquerade) lines.push(`  ${yellow(`masquerade to ${h.masquerade.to}`)} (${h.masquerade.rule})`);
  if (h.delivered) lines.push(`  ${green("delivered (local address)")}`);
  if (h.next) lines.push(`  ${h.via === "tunnel" ? "==tunnel==>" : "-->"} ${h.next}`);
  return lines;
}

export function formatExplanation(ex: Explanation): string {
  const out = [`${bold(`${ex.src} -> ${ex.dst}`)} ${ex.proto}${ex.proto === "icmp" ? "" : `/${ex.port}`}`, ""];
  for (const h of ex.hops) out.push(...hopLine(h));
  const oc = ex.outcome === "delivered" ? green(ex.outcome) : ex.outcome === "leaves" ? yellow("leaves the known namespaces") : red(ex.outcome);
  out.push("", `computed: ${oc}`);
  if (ex.probe) {
    out.push(bold("probe (nftables trace)"));
    for (const t of ex.probe.places) {
      out.push(`  ${t.place}: ${t.verdict === "dropped" ? red(`dropped by ${t.droppedBy}`) : t.verdict === "accepted" ? green("seen") : red("not seen")}`);
      for (const e of t.events) out.push(`    ${e.table} ${e.chain} ${e.type}${e.verdict ? ` ${e.verdict}` : ""}${e.rule ? `: ${e.rule}` : ""}${e.saddr ? dim(` [${e.saddr} > ${e.daddr}]`) : ""}`);
    }
    out.push(`traced: ${ex.probe.outcome}`);
    out.push(ex.probe.mismatches.length ? red(`MISMATCH between computed and traced path:\n${ex.probe.mismatches.map((m) => `  - ${m}`).join("\n")}`) : green("computed and traced paths agree"));
  }
  return out.join("\n");
}

