// `mncni explain SRC DST`: the path of one packet, hop by hop. In each namespace the route is
// the kernel's answer to RTM_GETROUTE for that packet (real source, arriving interface), not
// a re-implementation of routing; the next namespace is the one owning the next hop's
// address (or the other end of the veth). Anti-spoofing and masquerade are read from the
// sets and rules mncni owns. With a probe, a real packet marked for nftables tracing is sent
// and the kernel's trace events in every namespace of the path are compared with the
// computed path (explain-probe.ts); any difference is reported. Text: src/cli/text/explain.ts.
import { encodeKey, Netlink, NetlinkError, Nftables, type Link, type NeighInfo, type RouteInfo } from "../kernel/index.ts";
import { cidrContains } from "../net/cidr.ts";
import { HOST_VETH_PREFIX } from "../plugin/hostveth.ts";
import { ANTISPOOF, heldSet, HOLD, MASQUERADE, tableRef } from "../firewall/names.ts";
import { nftIn } from "./nft-in.ts";
import type { ProbeProto } from "./probe.ts";
import type { Decider, Direction, ExplainedDirection } from "../cluster/index.ts";

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
  /** Through a VXLAN device: the peer's VTEP the FDB sends the inner frame's MAC to, and the VNI. */
  tunnel?: { vtep: string; vni?: number; dev: string };
  /** How it reaches the next namespace: over a link, or through a tunnel device. */
  via?: "direct" | "tunnel";
  next?: string;
  masquerade?: { to: string; rule: string };
  /** nftables decisions that stop it here (anti-spoofing, the policy hold, a policy). */
  dropped?: string;
  /**
   * The address held here by the fail-closed policy hold (inet mncni-hold): its pod is not yet
   * programmed by the agent, whose next pass releases it. A wait, not a verdict on the packet.
   */
  held?: { ip: string; pod?: string };
  /** The policy verdict expected at this node (explain-policy.ts). */
  policy?: string;
  delivered?: boolean;
  /** Switched by this bridge, not routed. */
  bridged?: string;
  error?: string;
}

export interface TracedPlace {
  place: string;
  /** comment: a policy table rule's, read over netlink (what names its policy, see explain-policy.ts). */
  events: { table: string; chain: string; type: string; verdict?: string; rule?: string; comment?: string | undefined; saddr?: string; daddr?: string }[];
  verdict: "accepted" | "dropped" | "not seen";
  droppedBy?: string;
}

/** The verdict the policy evaluator expects for the packet (explain-policy.ts expectPolicy). */
export interface PolicyExpectation {
  allowed: boolean;
  deniedIn?: Direction;
  /** The deciding policy, as a line: kind, namespace/name, rule, tier. */
  by?: string;
  decider?: Decider;
  /** What decided each direction (absent: no policy selects that end in that direction). */
  egressBy?: string;
  ingressBy?: string;
  /** The nodes whose policy table judges each direction (the pods' nodes). */
  egressNode?: string;
  ingressNode?: string;
  /** Why, per direction: every policy selecting the judged pod and each rule as checked (the evaluator's account). */
  why?: { egress: ExplainedDirection; ingress: ExplainedDirection };
}

/** The verdict the traced probe met in the policy table (explain-policy.ts tracedPolicy). */
export interface TracedPolicy {
  place: string;
  verdict: "dropped" | "allowed";
  /** The deciding rule's comment, as the compiler wrote it. */
  rule: string;
  /** The same, as a policy name: kind, namespace/name, rule, tier. */
  by: string;
  /** The policy and rule, from the compiler's record of the comment (absent when the cluster state is not known). */
  decider?: Decider;
}

export type PathOutcome = "delivered" | "dropped" | "leaves" | "unreachable";

export interface ProbeAccount {
  places: TracedPlace[];
  outcome: string;
  mismatches: string[];
  /** Why the probe packet could not be sent (the kernel's errno): nothing was traced. */
  notSent?: string;
}

/** The way back of a TCP connection: the SYN-ACK, from the destination to the source it saw. */
export interface ReplyPath {
  src: string;
  dst: string;
  hops: Hop[];
  outcome: PathOutcome;
  probe?: ProbeAccount;
}

export interface Explanation {
  src: string;
  dst: string;
  proto: ProbeProto;
  port: number;
  hops: Hop[];
  outcome: PathOutcome;
  probe?: ProbeAccount;
  /** TCP only, when the packet is delivered: the reply's path (a connection needs both ways). */
  reply?: ReplyPath;
  /** The evaluator's verdict, and the one the probe met in the policy table. */
  policy?: { expected?: PolicyExpectation; traced?: TracedPolicy };
  /** Whether the eBPF fast path carries it past the node's stack (both ways), or why not; absent when the source's node runs without it. */
  fastPath?: { node: string; redirected: boolean; why: string[]; arrival?: { node: string; redirected: boolean; why: string[] } };
}

/** The policy verdict a node gives the packet (explain-policy.ts policyAt), if it judges it. */
export type PolicyAt = (place: Place) => { drop: boolean; policy: string } | undefined;

const PROTO_NUM: Record<ProbeProto, number> = { icmp: 1, tcp: 6, udp: 17 };
/** The protocol number of the probe in the destination's family (ICMPv6 for IPv6). */
const protoNum = (proto: ProbeProto, dst: string) => (proto === "icmp" && dst.includes(":") ? 58 : PROTO_NUM[proto]);
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
  for (const family of ANTISPOOF.families) {
    if (!nft.table(family, ANTISPOOF.name)) continue;
    const guarded = nft.hasSetElement({ family, table: ANTISPOOF.name, set: ANTISPOOF.ports }, encodeKey(["ifname"], [port]));
    if (!guarded) return undefined;
    const v6 = src.includes(":");
    const addrSet = ANTISPOOF.addr(v6 ? 6 : 4);
    const ok = nft.hasSetElement({ family, table: ANTISPOOF.name, set: addrSet }, encodeKey(["ifname", v6 ? "ipv6_addr" : "ipv4_addr"], [port, src]));
    return ok ? undefined : `anti-spoofing (${family} ${ANTISPOOF.name}): source ${src} is not in @${addrSet} for port ${port}`;
  }
  return undefined;
}

/**
 * The fail-closed hold, as the node's own sets say: is the packet's source or destination held
 * (the plugin holds a new pod until the agent has programmed its policy)? Its forward chain
 * drops both ways, before any policy chain.
 */
function heldIn(s: PlaceState, src: string, dst: string): string | undefined {
  const nft = Nftables.open(s.place.netns);
  try {
    if (!nft.table("inet", HOLD.name)) return undefined;
    for (const ip of [src, dst]) {
      if (!ip) continue;
      const v6 = ip.includes(":");
      if (nft.hasSetElement(heldSet(v6 ? 6 : 4), encodeKey([v6 ? "ipv6_addr" : "ipv4_addr"], [ip]))) return ip;
    }
    return undefined;
  } finally {
    nft.close();
  }
}

interface NftJsonRule { rule: { comment?: string; expr: Record<string, any>[] } }

/** Does one payload match of mncni's masquerade rule hold for ip? (prefix, set of prefixes/addresses, address) */
/** A prefix of the other family never holds the address (an `ip saddr` match on an IPv6 packet). */
const within = (cidr: string, ip: string) => cidr.includes(":") === ip.includes(":") && cidrContains(cidr, ip);

function matchRight(right: any, ip: string): boolean {
  if (typeof right === "string") return right === ip || (right.includes("/") && within(right, ip));
  if (right?.prefix) return within(`${right.prefix.addr}/${right.prefix.len}`, ip);
  if (right?.set) return right.set.some((x: any) => matchRight(x, ip));
  return false;
}

/** The node's masquerade decision for a packet leaving it, from its `inet mncni` postrouting rules. */
function masqueradeOf(s: PlaceState, src: string, dst: string): string | undefined {
  const [postrouting] = MASQUERADE.chains;
  const where = `${tableRef(MASQUERADE)} ${postrouting}`;
  const r = nftIn(s.place.netns, ["-j", "list", "chain", MASQUERADE.family, MASQUERADE.name, postrouting]);
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
    if (holds) return rule.rule.comment ? `${where} "${rule.rule.comment}"` : `${where} masquerade`;
  }
  return undefined;
}

/** reply: the packet answers a connection (policy does not judge it, its destination port is the peer's, unknown). */
export function computePath(places: Place[], src: Endpoint, dst: string, proto: ProbeProto, port: number, policyAt?: PolicyAt, o: { reply?: boolean } = {}): Explanation {
  const world = new World(places);
  const hops: Hop[] = [];
  /** Notes the policy verdict at this hop; true when it drops the packet. */
  const policyVerdict = (hop: Hop, place: Place): boolean => {
    const pol = policyAt?.(place);
    if (!pol) return false;
    hop.policy = pol.policy;
    if (pol.drop) hop.dropped = `policy: ${pol.policy}`;
    return pol.drop;
  };
  /** Notes a hold at a node that forwards the packet; true when it drops it. */
  const holdVerdict = (hop: Hop, at: PlaceState, source: string): boolean => {
    if (at.place.kind !== "node" || at.addrs.some((a) => a.ip === dst)) return false;
    const ip = heldIn(at, source, dst);
    if (!ip) return false;
    const pod = world.owner(ip, at.place.name)?.s.place;
    hop.held = { ip, ...(pod?.kind === "pod" ? { pod: pod.name } : {}) };
    hop.dropped = `held: ${pod?.kind === "pod" ? `pod ${pod.name} (${ip})` : ip} is not yet programmed by the agent (inet ${HOLD.name} drops its traffic until the agent has programmed its policy)`;
    return true;
  };
  let outcome: PathOutcome = "unreachable";
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
      // Forwarded by a node (it arrived there, and is not for the node itself): the hold.
      if (iif !== undefined && holdVerdict(hop, cur, source)) {
        outcome = "dropped";
        break;
      }
      if (policyVerdict(hop, cur.place)) {
        outcome = "dropped";
        break;
      }
      let r: RouteInfo;
      try {
        // Where the packet is sent, a source that is not the namespace's own (a spoofing pod
        // sends it anyway, IP_TRANSPARENT) plays no part in the kernel's choice of route.
        const own = iif !== undefined || cur.addrs.some((a) => a.ip === source);
        r = cur.nl.getRoute({ dst, ...(source && own ? { src: source } : {}), ...(iif !== undefined ? { iif } : {}), proto: protoNum(proto, dst), ...(proto !== "icmp" && !o.reply ? { dport: port } : {}) });
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
      // NAT decides on a connection's first packet only: a reply is never masqueraded.
      if (cur.place.kind === "node" && !o.reply) {
        const masq = masqueradeOf(cur, source, dst);
        // A forwarded packet's route carries no source: masquerade takes the one the node would send with.
        const to = masq ? (r.src ?? cur.nl.getRoute({ dst }).src) : undefined;
        if (masq && to) {
          hop.masquerade = { to, rule: masq };
          source = to;
        }
      }
      // Into a VXLAN device: the FDB names the peer's VTEP for the next hop's MAC; the inner
      // packet comes out of that node's device of the same VNI (the underlay in between carries
      // it encapsulated, unseen by a trace of the inner addresses).
      if (out.kind === "vxlan" && n?.mac) {
        const f = cur.nl.neighs({ family: "bridge" }).find((x) => x.index === out.index && x.mac === n.mac && x.dst);
        if (!f) {
          hop.error = `no FDB entry on ${out.name} for ${n.mac}: the tunnel has no VTEP to send it to`;
          break;
        }
        hop.tunnel = { vtep: f.dst!, dev: out.name, ...(out.vxlan ? { vni: out.vxlan.vni } : {}) };
        const vtep = world.owner(f.dst!, cur.place.name);
        // The device bound to that VTEP address (a dual-stack node has one per family, same VNI).
        const sameVni = (l: Link) => l.kind === "vxlan" && (out.vxlan === undefined || l.vxlan?.vni === out.vxlan.vni);
        const dev = vtep?.s.links.find((l) => sameVni(l) && l.vxlan?.local === f.dst) ?? vtep?.s.links.find((l) => sameVni(l) && (l.vxlan?.local === undefined || l.vxlan.local.includes(":") === f.dst!.includes(":")));
        if (vtep && dev) {
          hop.next = vtep.s.place.name;
          iif = dev.index;
          port_ = undefined;
          cur = vtep.s;
          continue;
        }
        if (vtep) {
          hop.error = `${vtep.s.place.name} owns VTEP ${f.dst} but has no VXLAN device of VNI ${out.vxlan?.vni ?? "?"}`;
          break;
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
        // Bridged between pods: the node's forward hook sees it too (br_netfilter, on with policy).
        if (holdVerdict(b, peer.s, source) || policyVerdict(b, peer.s.place)) {
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
