// The policy compiler, structure half: policies -> the chains and named sets of table
// `inet mncni-policy`. Pure, and independent of pods: which pods are in which set is
// members.ts's job, so a pod coming or going changes set elements only. Layout (docs/policy.md
// has the diagram), per direction DIR (egress: the subject is the source address; ingress: the
// destination):
//
//   chain forward (hook forward) ct established,related accept; a source in set sel_egress_4/6
//                             (some policy selects it for egress) goes to egress-admin; the
//                             rest to chain ingress.
//   chain ingress             a destination in sel_ingress_4/6 goes to ingress-admin; the rest
//                             is accepted.
//   chain DIR-admin           the Admin tier: per CNP by priority, `subject in s_X jump cnp/NAME/DIR`;
//                             then goto DIR-np.
//   chain cnp/NAME/DIR        one CNP's rules in order: Accept -> allow, Deny -> drop,
//                             Pass -> goto DIR-np (Admin) / allow (Baseline); no match: return.
//   chain DIR-np              vmap np_DIR_4/6: subject -> goto DIR-np/NS (its namespace has
//                             NetworkPolicies for DIR); others goto DIR-baseline.
//   chain DIR-np/NS           per policy: `subject in s_Y jump np/NS/NAME/DIR` (its rules allow);
//                             then a subject an isolating policy selects is dropped; the rest
//                             goto DIR-baseline.
//   chain DIR-baseline        the Baseline tier like the Admin one; then allow.
//
// "Allow" is `goto ingress` in the egress chains (an egress allow still meets the destination's
// ingress policy) and `accept` in the ingress ones: every path ends in a verdict, so one base
// chain suffices and a packet of an established flow meets one hook and one rule. The chains
// are shared by every pod a policy selects, and sets are named by what defines them (two
// policies with the same peer share one set), so names stay put from one compile to the next.
import { createHash } from "node:crypto";
import type {
  CNPAction, CNPEgressPeer, CNPIngressPeer, CNPProtocol, ClusterState, KubeClusterNetworkPolicy, KubeNetworkPolicy,
  Decider, Direction, NetworkPolicyPeer, NetworkPolicyPort, Protocol,
} from "../../cluster/types.ts";
import { type Family, familyOf } from "../../net/ip.ts";
import { ISOLATED } from "../../cluster/index.ts";
import { blockIntervals, normalizeCIDR } from "../../net/cidr.ts";
import { queryKey, type PodQuery } from "./peers.ts";


const DIRECTIONS: readonly Direction[] = ["ingress", "egress"];

/** A match on the remote end of a flow (the source for ingress, the destination for egress). */
type Peer =
  | { kind: "any" }
  | { kind: "pods"; query: PodQuery }
  | { kind: "cidr"; family: Family; cidr: string; except: string[] }
  /** Matches nothing (an unresolvable peer in an Accept rule, fail closed). */
  | { kind: "none" };

/** A match on protocol and destination port; a named port is resolved against a pod. */
type PortMatch =
  | { kind: "any" }
  | { kind: "proto"; protocol: Protocol; from?: number; to?: number }
  | { kind: "named"; name: string; protocol?: Protocol };

type Verdict = "return" | "drop" | "next";

interface Rule {
  peers: Peer[];
  ports: PortMatch[];
  verdict: Verdict;
  /** Names the deciding policy and rule, kept in the nft comment. */
  tag: string;
  who: Decider;
}

/** NFLOG group the verdict log rules send to (the agent reads it). */
export const NFLOG_GROUP = 1713;
/** Log prefix: `mncni <D|A> <id>`, the id keys CompiledPolicy.deciders (nft allows 127 bytes: names do not fit). */
const logPrefix = (verdict: "D" | "A", id: string) => `mncni ${verdict} ${id}`;
/** At most this many log lines per second per rule from the kernel (the writer caps the total too). */
const LOG_LIMIT = "limit rate 10/second burst 20 packets";

const deciderId = (d: Decider) => createHash("sha256").update(JSON.stringify(d)).digest("hex").slice(0, 12);

const DEFAULT_PROTOCOL: Protocol = "TCP";

function npPeer(np: KubeNetworkPolicy, p: NetworkPolicyPeer): Peer {
  if (p.ipBlock) {
    const cidr = normalizeCIDR(p.ipBlock.cidr);
    return { kind: "cidr", family: familyOf(cidr), cidr, except: (p.ipBlock.except ?? []).map(normalizeCIDR) };
  }
  // No namespaceSelector: the policy's own namespace. No podSelector: every pod there.
  return { kind: "pods", query: { namespaces: p.namespaceSelector ?? np.metadata.namespace!, pods: p.podSelector ?? {} } };
}

function npPort(p: NetworkPolicyPort): PortMatch {
  const protocol = p.protocol ?? DEFAULT_PROTOCOL;
  if (p.port === undefined) return { kind: "proto", protocol };
  if (typeof p.port === "string" && !/^[0-9]+$/.test(p.port)) return { kind: "named", name: p.port, protocol };
  const from = Number(p.port);
  return { kind: "proto", protocol, from, to: p.endPort ?? from };
}

/** Peers this implementation does not enforce (docs/policy.md, limits). */
const unsupportedPeer = (p: CNPIngressPeer | CNPEgressPeer) => (p as CNPEgressPeer).nodes !== undefined || (p as CNPEgressPeer).domainNames !== undefined;

function cnpPeer(p: CNPIngressPeer | CNPEgressPeer): Peer[] {
  if (p.namespaces) return [{ kind: "pods", query: { namespaces: p.namespaces, pods: {} } }];
  if (p.pods) return [{ kind: "pods", query: { namespaces: p.pods.namespaceSelector ?? {}, pods: p.pods.podSelector } }];
  const e = p as CNPEgressPeer;
  if (e.networks) {
    return e.networks.map((c) => {
      const cidr = normalizeCIDR(c);
      return { kind: "cidr", family: familyOf(cidr), cidr, except: [] };
    });
  }
  // nodes and domainNames: an Accept rule's peer matches nothing (a Deny or Pass rule with one
  // is a Deny of everything: cnpRules).
  return [{ kind: "none" }];
}

function cnpPort(p: CNPProtocol): PortMatch {
  if (p.destinationNamedPort !== undefined) return { kind: "named", name: p.destinationNamedPort };
  const [key, protocol] = p.tcp ? (["tcp", "TCP"] as const) : p.udp ? (["udp", "UDP"] as const) : (["sctp", "SCTP"] as const);
  const dp = p[key]!.destinationPort;
  if (!dp) return { kind: "proto", protocol };
  return dp.range ? { kind: "proto", protocol, from: dp.range.start, to: dp.range.end } : { kind: "proto", protocol, from: dp.number, to: dp.number };
}

/** policyTypes as the API defaults them: Ingress always, Egress when egress rules are given. */
function npTypes(np: KubeNetworkPolicy): Direction[] {
  const t = np.spec.policyTypes;
  if (t?.length) return DIRECTIONS.filter((d) => t.includes(d === "ingress" ? "Ingress" : "Egress"));
  return np.spec.egress?.length ? ["ingress", "egress"] : ["ingress"];
}

function cnpSubject(cnp: KubeClusterNetworkPolicy): PodQuery {
  const s = cnp.spec.subject;
  return s.namespaces ? { namespaces: s.namespaces, pods: {} } : { namespaces: s.pods!.namespaceSelector ?? {}, pods: s.pods!.podSelector };
}

const ACTION_VERDICT: Record<"Admin" | "Baseline", Record<CNPAction, Verdict>> = {
  Admin: { Accept: "return", Deny: "drop", Pass: "next" },
  Baseline: { Accept: "return", Deny: "drop", Pass: "return" },
};

function cnpRules(cnp: KubeClusterNetworkPolicy, dir: Direction): Rule[] {
  const rules = dir === "ingress" ? cnp.spec.ingress ?? [] : cnp.spec.egress ?? [];
  return rules.map((r, i) => {
    const list = dir === "ingress" ? (r as { from: CNPIngressPeer[] }).from : (r as { to: CNPEgressPeer[] }).to;
    // The API's fail-closed rule for a peer an implementation cannot use: a Deny or Pass rule
    // with one is treated as a Deny of everything (a Pass matching all would skip later Denies).
    const denyAll = r.action !== "Accept" && list.some(unsupportedPeer);
    return {
      peers: denyAll ? [{ kind: "any" as const }] : list.flatMap(cnpPeer),
      ports: r.protocols?.length && !denyAll ? r.protocols.map(cnpPort) : [{ kind: "any" as const }],
      verdict: denyAll ? "drop" as const : ACTION_VERDICT[cnp.spec.tier][r.action],
      tag: `cnp ${cnp.spec.tier} ${cnp.metadata.name} ${dir}[${i}]${r.name ? ` ${r.name}` : ""}`,
      who: { kind: "ClusterNetworkPolicy" as const, name: cnp.metadata.name, rule: r.name || `${dir}[${i}]`, tier: cnp.spec.tier, direction: dir },
    };
  });
}

function npRules(np: KubeNetworkPolicy, dir: Direction): Rule[] {
  const rules = dir === "ingress" ? np.spec.ingress ?? [] : np.spec.egress ?? [];
  return rules.map((r, i) => {
    const list = dir === "ingress" ? (r as { from?: NetworkPolicyPeer[] }).from : (r as { to?: NetworkPolicyPeer[] }).to;
    return {
      peers: list?.length ? list.map((p) => npPeer(np, p)) : [{ kind: "any" }],
      ports: r.ports?.length ? r.ports.map(npPort) : [{ kind: "any" }],
      verdict: "return" as const,
      tag: `np ${np.metadata.namespace}/${np.metadata.name} ${dir}[${i}]`,
      who: { kind: "NetworkPolicy" as const, namespace: np.metadata.namespace, name: np.metadata.name, rule: `${dir}[${i}]`, direction: dir },
    };
  });
}

const ip = (f: Family) => (f === 4 ? "ip" : "ip6");
const peerField = (dir: Direction) => (dir === "ingress" ? "saddr" : "daddr");
const subjectField = (dir: Direction) => (dir === "ingress" ? "daddr" : "saddr");
const l4 = (p: Protocol) => p.toLowerCase();
const FAMILIES: readonly Family[] = [4, 6];

/**
 * What a named set holds (members.ts computes its elements from the pods):
 * - peers: addresses of every pod (any node) one of the queries selects (a rule's pod peers
 *   are one set, so a rule is a few nft rules however many peers it lists);
 * - subjects: addresses of this node's pods the query selects;
 * - ports: `address . protocol . port` of the named container ports (any of `ports`) of the
 *   pods in scope (this node's pods for ingress, where the port is the subject's; the peers
 *   for egress, or every pod when the peers are address blocks or anything);
 * - dispatch (a verdict map): this node's pods of a namespace with NetworkPolicies for dir ->
 *   goto DIR-np/NS;
 * - selected: this node's pods some policy selects in dir.
 */
export type SetDef =
  | { kind: "peers"; family: Family; queries: PodQuery[] }
  | { kind: "subjects"; family: Family; query: PodQuery }
  | { kind: "ports"; family: Family; scope: PodQuery[] | "local" | "all"; ports: NamedPortRef[] }
  | { kind: "dispatch"; family: Family; dir: Direction }
  | { kind: "selected"; family: Family; dir: Direction };

/** A named container port a rule refers to (any protocol when absent). */
export interface NamedPortRef {
  name: string;
  protocol?: Protocol;
}

/** A chain: its rules, and for a base chain its hook line. */
export interface ChainDef {
  hook?: string;
  rules: string[];
}

/** Set names: short (nft keeps 255 bytes, but they appear in every rule) and fixed by what defines the set. */
const digest = (s: string) => Bun.hash(s).toString(36).padStart(13, "0").slice(0, 10);
const setName = (def: SetDef): string => {
  switch (def.kind) {
    case "peers": return `p_${digest(JSON.stringify(def.queries.map(queryKey)))}_${def.family}`;
    case "subjects": return `s_${digest(queryKey(def.query))}_${def.family}`;
    case "ports": return `n_${digest(JSON.stringify([typeof def.scope === "string" ? def.scope : def.scope.map(queryKey), def.ports.map((p) => [p.name, p.protocol ?? ""])]))}_${def.family}`;
    case "dispatch": return `np_${def.dir}_${def.family}`;
    case "selected": return `sel_${def.dir}_${def.family}`;
  }
};

/** What a set's elements look like to nft: its key types, and whether it maps to verdicts. */
export function setType(def: SetDef): { key: ("ipv4_addr" | "ipv6_addr" | "inet_proto" | "inet_service")[]; verdict: boolean } {
  const addr = def.family === 4 ? "ipv4_addr" : "ipv6_addr";
  if (def.kind === "ports") return { key: [addr, "inet_proto", "inet_service"], verdict: false };
  return { key: [addr], verdict: def.kind === "dispatch" };
}

/** A human description of the set, kept as its comment (`nft list` shows it). */
export function describeSet(def: SetDef): string {
  const q = (x: PodQuery) => `${typeof x.namespaces === "string" ? `ns ${x.namespaces}` : `ns ${JSON.stringify(x.namespaces)}`} pods ${JSON.stringify(x.pods)}`;
  const text = def.kind === "peers" ? `peers: ${def.queries.map(q).join(" or ")}`
    : def.kind === "subjects" ? `subjects on this node: ${q(def.query)}`
    : def.kind === "ports" ? `named port ${def.ports.map((p) => `${p.name}${p.protocol ? `/${p.protocol}` : ""}`).join(", ")} of ${typeof def.scope === "string" ? `${def.scope} pods` : def.scope.map(q).join(" or ")}`
    : def.kind === "dispatch" ? `${def.dir}: pods of namespaces with NetworkPolicies`
    : `${def.dir}: pods some policy selects`;
  return nftComment(text);
}

export interface PolicyStructure {
  sets: Map<string, SetDef>;
  chains: Map<string, ChainDef>;
  /** Hash of the sets' definitions and the chains: tells whether the kernel has this structure. */
  hash: string;
  /** Rules in the policy chains (the ruleset's size, for logs and the benchmark). */
  rules: number;
  /** Log prefix id -> the policy and rule it names. */
  deciders: Map<string, Decider>;
  /**
   * Each deciding rule's comment, exactly as the kernel keeps it, with what it decides: what
   * obs/ reads to name the rule a traced packet met (no parsing of the comment's layout).
   */
  decisions: Map<string, RuleDecision>;
  /** Namespaces with a NetworkPolicy for each direction. */
  npNamespaces: Record<Direction, Set<string>>;
  /** Names of the subject sets, per direction and family, whose pods count as selected. */
  subjectSets: Record<Direction, Record<Family, Set<string>>>;
  /** Whether any policy exists (no policy: no table). */
  any: boolean;
  /** Policies compiled fail closed because they are too large (MAX_POLICY_RULES), one sentence each. */
  refused: string[];
}

export interface CompileInput {
  state: Pick<ClusterState, "networkPolicies" | "clusterNetworkPolicies">;
  /** Log accepted flows too (denied ones always are). */
  logAccepts?: boolean;
}

/**
 * Text for an nft comment: nft refuses a comment over 128 bytes (not characters), so a name
 * in another script (a CNP rule's name is any string) is cut by bytes, at a character
 * boundary; quotes and control characters, which would end or break the script line, are
 * replaced. 120 bytes leaves room for nothing else to matter.
 */
export function nftComment(text: string, maxBytes = 120): string {
  const clean = text.replace(/"/g, "'").replace(/[\u0000-\u001f\u007f]/g, "?");
  if (Buffer.byteLength(clean) <= maxBytes) return clean;
  let out = "";
  let bytes = 0;
  for (const ch of clean) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}
const comment = (tag: string) => `comment "${nftComment(tag)}"`;
/** nft keeps chain names under 256 bytes; a name from long Kubernetes names keeps its start and gets a hash. */
const chainName = (name: string) => (name.length <= 200 ? name : `${name.slice(0, 180)}-${digest(name)}`);
const cnpChain = (c: KubeClusterNetworkPolicy, dir: Direction) => chainName(`cnp/${c.metadata.name}/${dir}`);
const npChain = (np: KubeNetworkPolicy, dir: Direction) => chainName(`np/${np.metadata.namespace}/${np.metadata.name}/${dir}`);
export const npNamespaceChain = (dir: Direction, ns: string) => `${dir}-np/${ns}`;
/** What allows a flow in a direction: egress goes on to the ingress checks, ingress accepts. */
const ALLOW: Record<Direction, string> = { egress: "goto ingress", ingress: "accept" };

/**
 * Before any policy, in the forward hook (bridge mode: pods of one node, through
 * br_netfilter; a router never forwards link-local, so routed mode never gets here):
 * - neighbour discovery (ICMPv6 133-137: router and neighbour solicitation and advertisement,
 *   redirect) is never subject to policy, or an egress-isolated pod could not resolve the
 *   pod it is allowed to reach (conntrack does not track ND: it never counts as established);
 * - every other packet from or to a link-local address is dropped. Pods keep an fe80::
 *   address even in an IPv4-only cluster, anti-spoofing lets it through, and the sets hold
 *   the pods' cluster addresses only: a dual-stack listener of an isolated pod would answer
 *   any pod of the node over link-local. No policy can allow a link-local address (it is no
 *   pod's address in the API), so none is allowed.
 */
const LINK_RULES = [
  `icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept ${comment("neighbour discovery is never subject to policy")}`,
  `ip6 saddr fe80::/10 counter drop ${comment("link-local between pods: no policy can allow it")}`,
  `ip6 daddr fe80::/10 counter drop ${comment("link-local between pods: no policy can allow it")}`,
];

/** Pod queries without repeats, in a fixed order (the set's name and elements depend on them only). */
function uniqueQueries(qs: PodQuery[]): PodQuery[] {
  const m = new Map(qs.map((q) => [queryKey(q), q]));
  return [...m.keys()].sort().map((k) => m.get(k)!);
}

function uniqueNamed(ps: Extract<PortMatch, { kind: "named" }>[]): NamedPortRef[] {
  const m = new Map(ps.map((p) => [JSON.stringify([p.name, p.protocol ?? ""]), { name: p.name, ...(p.protocol ? { protocol: p.protocol } : {}) }]));
  return [...m.keys()].sort().map((k) => m.get(k)!);
}

/**
 * Numbered ports as few matches as there are protocols: a protocol with a port-less entry
 * matches whole (those together in one match), the others as an anonymous set of ports and
 * ranges (merged: nft refuses overlapping elements).
 */
function protocolMatches(ps: Extract<PortMatch, { kind: "proto" }>[]): string[] {
  const whole = new Set<Protocol>();
  const ranges = new Map<Protocol, [number, number][]>();
  for (const p of ps) {
    if (p.from === undefined) whole.add(p.protocol);
    else ranges.set(p.protocol, [...(ranges.get(p.protocol) ?? []), [p.from, p.to ?? p.from]]);
  }
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const out: string[] = [];
  const w = [...whole].sort(order).map(l4);
  if (w.length) out.push(`meta l4proto ${w.length === 1 ? w[0] : `{ ${w.join(", ")} }`}`);
  for (const [proto, rs] of [...ranges].filter(([p]) => !whole.has(p)).sort((a, b) => order(a[0], b[0]))) {
    rs.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const r of rs) {
      const last = merged.at(-1);
      if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    const text = merged.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
    out.push(`meta l4proto ${l4(proto)} th dport ${text.length === 1 ? text[0] : `{ ${text.join(", ")} }`}`);
  }
  return out;
}

/** One policy's part of the structure: compiled once per policy object (a source keeps unchanged ones). */
/** What a deciding rule of the policy table does, and for which policy and rule. */
export interface RuleDecision {
  decider: Decider;
  /** allow: accept (ingress) or on to the ingress checks (egress); pass: on to the next tier. */
  verdict: "allow" | "deny" | "pass";
}

interface Fragment {
  sets: [string, SetDef][];
  chains: [string, ChainDef][];
  deciders: [string, Decider][];
  decisions: [string, RuleDecision][];
  /** Per direction the policy acts in: its subject sets and its lines in the stage chain. */
  dirs: Partial<Record<Direction, { subjects: Record<Family, string>; jumps: string[]; denies: string[] }>>;
  hash: string;
  /** Why the policy is refused (compiled fail closed instead), one sentence. */
  refused?: string;
}

/**
 * The most nft rules one policy may compile to. Rules grow with a policy's rules (not with
 * its peers or ports, which are sets), so only a policy of thousands of rules gets there; it
 * would make every first packet of its subjects walk them and every change of it rewrite
 * them, so it is refused: compiled fail closed (a NetworkPolicy isolates its pods and allows
 * nothing; a ClusterNetworkPolicy denies all of its subjects' traffic in its directions) and
 * reported.
 */
export const MAX_POLICY_RULES = 5000;

const fragmentRules = (f: Fragment) =>
  f.chains.reduce((n, [, c]) => n + c.rules.length, 0) + Object.values(f.dirs).reduce((n, d) => n + d.jumps.length + d.denies.length, 0);

const fragments = { plain: new WeakMap<object, Fragment>(), logAccepts: new WeakMap<object, Fragment>() };

/** A policy's fragment, or its fail-closed form when it would be too large (MAX_POLICY_RULES). */
function policyFragment(policy: KubeNetworkPolicy | KubeClusterNetworkPolicy, logAccepts: boolean): Fragment {
  const f = compileFragment(policy, logAccepts);
  const n = fragmentRules(f);
  if (n <= MAX_POLICY_RULES) return f;
  const what = "priority" in policy.spec ? `ClusterNetworkPolicy ${policy.metadata.name}` : `NetworkPolicy ${policy.metadata.namespace}/${policy.metadata.name}`;
  const closed = "priority" in policy.spec ? "all traffic of the pods it selects is denied in its directions" : "the pods it selects are isolated and it allows nothing";
  return { ...compileFragment(policy, logAccepts, true), refused: `${what} is refused: it would compile to ${n} nft rules (more than ${MAX_POLICY_RULES}); until it is made smaller, ${closed}` };
}

function compileFragment(policy: KubeNetworkPolicy | KubeClusterNetworkPolicy, logAccepts: boolean, refused = false): Fragment {
  const sets = new Map<string, SetDef>();
  const chains: [string, ChainDef][] = [];
  const deciders = new Map<string, Decider>();
  const decisions = new Map<string, RuleDecision>();
  const set = (def: SetDef): string => {
    const name = setName(def);
    sets.set(name, def);
    return name;
  };
  /** A deciding rule's comment, recorded with what it decides. */
  const decides = (tag: string, decider: Decider, verdict: RuleDecision["verdict"]): string => {
    const text = nftComment(tag);
    decisions.set(text, { decider, verdict });
    return `comment "${text}"`;
  };
  /** The log rule before a verdict (drops always, accepts when asked), or nothing. */
  const logRule = (m: string, verdict: string, who: Decider): string[] => {
    const v = verdict === "drop" ? "D" : (verdict === "accept" || verdict === ALLOW.egress) && logAccepts ? "A" : undefined;
    if (!v) return [];
    const id = deciderId(who);
    deciders.set(id, who);
    return [`${m ? `${m} ` : ""}${LOG_LIMIT} log prefix "${logPrefix(v, id)}" group ${NFLOG_GROUP}`];
  };
  /**
   * One compiled rule's nft rules, linear in the rule's size: its pod peers are one set per
   * family, its address blocks one interval set per family, its ports one match per protocol
   * (an anonymous set of ports and ranges) and one named-ports set. So a rule is at most a few
   * nft rules (peer group x port group), whatever number of peers and ports it lists.
   */
  const ruleLines = (rule: Rule, dir: Direction, verdict: string): string[] => {
    const out: string[] = [];
    const field = peerField(dir);
    const decision = verdict === "drop" ? "deny" : verdict === ALLOW[dir] ? "allow" : "pass";
    const emit = (m: string) => out.push(...logRule(m, verdict, rule.who), `${m ? `${m} ` : ""}counter ${verdict} ${decides(rule.tag, rule.who, decision)}`);
    const peers = rule.peers.filter((p) => p.kind !== "none");
    if (!peers.length) return out;
    const anyPort = rule.ports.some((p) => p.kind === "any");
    const protoMatches = anyPort ? [""] : protocolMatches(rule.ports.filter((p): p is Extract<PortMatch, { kind: "proto" }> => p.kind === "proto"));
    const named = anyPort ? [] : uniqueNamed(rule.ports.filter((p): p is Extract<PortMatch, { kind: "named" }> => p.kind === "named"));
    // A named port is the destination's: the subject's for ingress, the peer's for egress.
    const namedMatch = (f: Family, scope: PodQuery[] | "all") =>
      `${ip(f)} daddr . meta l4proto . th dport @${set({ kind: "ports", family: f, scope: dir === "ingress" ? "local" : scope, ports: named })}`;
    const withPorts = (m: string, f: Family | undefined, scope: PodQuery[] | "all") => {
      for (const pe of protoMatches) emit([m, pe].filter(Boolean).join(" "));
      if (named.length) for (const g of f ? [f] : FAMILIES) emit([m, namedMatch(g, scope)].filter(Boolean).join(" "));
    };
    if (peers.some((p) => p.kind === "any")) {
      // Any peer: the ports alone (a named port per family, through every pod's ports).
      withPorts("", undefined, "all");
      return out;
    }
    const queries = uniqueQueries(peers.flatMap((p) => (p.kind === "pods" ? [p.query] : [])));
    const blocks = peers.flatMap((p) => (p.kind === "cidr" ? [p] : []));
    for (const f of FAMILIES) {
      if (queries.length) {
        const m = `${ip(f)} ${field} @${set({ kind: "peers", family: f, queries })}`;
        for (const pe of protoMatches) emit([m, pe].filter(Boolean).join(" "));
        // An egress named port's set holds exactly the peers' ports: it is the whole match.
        if (named.length) emit(dir === "egress" ? namedMatch(f, queries) : `${m} ${namedMatch(f, queries)}`);
      }
      const match = blockMatch(`${ip(f)} ${field}`, blocks.filter((b) => b.family === f), f);
      // An egress named port to an address block: the ports of the pods in it (the
      // destination's named port, as for any peer; an address that is no pod's has none).
      if (match) withPorts(match, f, "all");
    }
    return out;
  };
  const subjects = (q: PodQuery): Record<Family, string> => ({ 4: set({ kind: "subjects", family: 4, query: q }), 6: set({ kind: "subjects", family: 6, query: q }) });
  const guard = (dir: Direction, s: Record<Family, string>, then: string) => FAMILIES.map((f) => `${ip(f)} ${subjectField(dir)} @${s[f]} ${then}`);
  const dirs: Fragment["dirs"] = {};

  if ("priority" in policy.spec) {
    const c = policy as KubeClusterNetworkPolicy;
    const t = c.spec.tier;
    for (const dir of DIRECTIONS) {
      if (!(dir === "ingress" ? c.spec.ingress : c.spec.egress)?.length) continue;
      const name = cnpChain(c, dir);
      if (refused) {
        const who: Decider = { kind: "ClusterNetworkPolicy", name: c.metadata.name, rule: "refused", tier: t, direction: dir };
        chains.push([name, { rules: [...logRule("", "drop", who), `counter drop ${decides(`cnp ${t} ${c.metadata.name} ${dir} refused: too many rules`, who, "deny")}`] }]);
      } else {
        // Accept ends the direction; Pass leaves the Admin tier for the NetworkPolicy stage, and in the Baseline tier allows.
        chains.push([name, { rules: cnpRules(c, dir).flatMap((r) => ruleLines(r, dir, r.verdict === "return" ? ALLOW[dir] : r.verdict === "drop" ? "drop" : t === "Admin" ? `goto ${dir}-np` : ALLOW[dir])) }]);
      }
      const s = subjects(cnpSubject(c));
      dirs[dir] = { subjects: s, jumps: guard(dir, s, `jump ${name}`), denies: [] };
    }
  } else {
    const np = policy as KubeNetworkPolicy;
    const ns = np.metadata.namespace!;
    for (const dir of npTypes(np)) {
      const s = subjects({ namespaces: ns, pods: np.spec.podSelector });
      const rules = refused ? [] : npRules(np, dir);
      const jumps: string[] = [];
      if (rules.length) {
        chains.push([npChain(np, dir), { rules: rules.flatMap((r) => ruleLines(r, dir, ALLOW[dir])) }]);
        jumps.push(...guard(dir, s, `jump ${npChain(np, dir)}`));
      }
      // Isolated and no rule allowed: the log names the first isolating policy (by name).
      const who: Decider = { kind: "NetworkPolicy", namespace: ns, name: np.metadata.name, rule: ISOLATED, direction: dir };
      const denies = FAMILIES.flatMap((f) => {
        const m = `${ip(f)} ${subjectField(dir)} @${s[f]}`;
        return [...logRule(m, "drop", who), `${m} counter drop ${decides(`np ${ns} ${dir} isolated: no rule allows (${np.metadata.name})`, who, "deny")}`];
      });
      dirs[dir] = { subjects: s, jumps, denies };
    }
  }
  const text = JSON.stringify([[...sets.keys()], chains, dirs]);
  return { sets: [...sets], chains, deciders: [...deciders], decisions: [...decisions], dirs, hash: Bun.hash(text).toString(36) };
}

/** Compiles the policies' chains and set definitions. Throws only on a selector the validation let through. */
export function compilePolicy(input: CompileInput): PolicyStructure {
  const { state } = input;
  const cache = input.logAccepts ? fragments.logAccepts : fragments.plain;
  const fragment = (p: KubeNetworkPolicy | KubeClusterNetworkPolicy) => {
    let f = cache.get(p);
    if (!f) cache.set(p, (f = policyFragment(p, !!input.logAccepts)));
    return f;
  };
  const sets = new Map<string, SetDef>();
  const chains = new Map<string, ChainDef>();
  const deciders = new Map<string, Decider>();
  const decisions = new Map<string, RuleDecision>();
  const h = new Bun.CryptoHasher("sha256");
  let ruleCount = 0;
  const refused: string[] = [];
  const use = (f: Fragment) => {
    if (f.refused) refused.push(f.refused);
    for (const [n, d] of f.sets) sets.set(n, d);
    for (const [n, c] of f.chains) {
      chains.set(n, c);
      ruleCount += c.rules.length;
    }
    for (const [id, d] of f.deciders) deciders.set(id, d);
    for (const [c, d] of f.decisions) decisions.set(c, d);
    h.update(f.hash);
  };
  const chain = (name: string, rules: string[], hook?: string) => {
    if (!hook) ruleCount += rules.length;
    chains.set(name, hook ? { hook, rules } : { rules });
    h.update(`chain ${name} ${hook ?? ""}\n${rules.join("\n")}\n`);
  };
  const set = (def: SetDef): string => {
    const name = setName(def);
    sets.set(name, def);
    return name;
  };

  const cnps = [...state.clusterNetworkPolicies.values()].sort((a, b) => a.spec.priority - b.spec.priority || (a.metadata.name < b.metadata.name ? -1 : 1));
  const nps = [...state.networkPolicies.values()].sort((a, b) => {
    const x = `${a.metadata.namespace}/${a.metadata.name}`;
    const y = `${b.metadata.namespace}/${b.metadata.name}`;
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (const p of cnps) use(fragment(p));
  for (const p of nps) use(fragment(p));
  const npNamespaces: Record<Direction, Set<string>> = { ingress: new Set(), egress: new Set() };
  const subjectSets: Record<Direction, Record<Family, Set<string>>> = { ingress: { 4: new Set(), 6: new Set() }, egress: { 4: new Set(), 6: new Set() } };
  const subject = (dir: Direction, s: Record<Family, string>) => {
    for (const f of FAMILIES) subjectSets[dir][f].add(s[f]);
  };
  const guard = (dir: Direction, s: Record<Family, string>, then: string) => FAMILIES.map((f) => `${ip(f)} ${subjectField(dir)} @${s[f]} ${then}`);

  for (const dir of DIRECTIONS) {
    const tier = (t: "Admin" | "Baseline") => cnps.filter((c) => c.spec.tier === t).flatMap((c) => {
      const d = fragment(c).dirs[dir];
      if (!d) return [];
      subject(dir, d.subjects);
      return d.jumps;
    });
    chain(`${dir}-admin`, [...tier("Admin"), `goto ${dir}-np`]);
    chain(`${dir}-baseline`, [...tier("Baseline"), ALLOW[dir]]);
    const byNs = new Map<string, { jumps: string[]; denies: string[] }>();
    for (const np of nps) {
      const d = fragment(np).dirs[dir];
      if (!d) continue;
      subject(dir, d.subjects);
      const ns = np.metadata.namespace!;
      let g = byNs.get(ns);
      if (!g) byNs.set(ns, (g = { jumps: [], denies: [] }));
      g.jumps.push(...d.jumps);
      g.denies.push(...d.denies);
    }
    for (const [ns, g] of byNs) {
      npNamespaces[dir].add(ns);
      chain(npNamespaceChain(dir, ns), [...g.jumps, ...g.denies, `goto ${dir}-baseline`]);
    }
    const dispatch = { 4: set({ kind: "dispatch", family: 4, dir }), 6: set({ kind: "dispatch", family: 6, dir }) };
    chain(`${dir}-np`, [...FAMILIES.map((f) => `${ip(f)} ${subjectField(dir)} vmap @${dispatch[f]}`), `goto ${dir}-baseline`]);
    const sel = { 4: set({ kind: "selected", family: 4, dir }), 6: set({ kind: "selected", family: 6, dir }) };
    if (dir === "ingress") chain("ingress", [...guard(dir, sel, "goto ingress-admin"), "accept"]);
    else {
      chain("forward", [
        // Replies of allowed connections: the first packet was checked both ways.
        "ct state established,related accept",
        ...LINK_RULES,
        ...guard(dir, sel, "goto egress-admin"),
        "goto ingress",
      ], "type filter hook forward priority filter + 10; policy accept;");
    }
  }
  const any = state.networkPolicies.size + state.clusterNetworkPolicies.size > 0;
  return { sets, chains, hash: h.digest("hex").slice(0, 16), rules: ruleCount, deciders, decisions, npNamespaces, subjectSets, any, refused };
}

/** Address-block matches by their blocks: policies repeat the same blocks, and the interval arithmetic is bigint (~30 ms for 1,000 blocks). */
const blockMatches = new Map<string, string | undefined>();
const BLOCK_MATCHES_KEPT = 10_000;

/**
 * The match for a rule's address blocks of one family, or undefined when they cover nothing.
 * One block with exceptions is matched as the block and not the exceptions, as nft writes it
 * by hand: the kernel builds an anonymous interval set far more slowly than it compares a
 * prefix (with 1,000 such rules, `nft -f` took ~0.15 s more system time for the interval
 * sets). Several blocks are one interval set, so a rule stays one match whatever number of
 * blocks it lists.
 */
function blockMatch(field: string, blocks: readonly { cidr: string; except: readonly string[] }[], f: Family): string | undefined {
  if (!blocks.length) return undefined;
  const key = `${field} ${JSON.stringify(blocks.map((b) => [b.cidr, b.except]))}`;
  if (blockMatches.has(key)) return blockMatches.get(key);
  if (blockMatches.size >= BLOCK_MATCHES_KEPT) blockMatches.clear();
  const intervals = blockIntervals(blocks, f);
  let match: string | undefined;
  if (intervals.length === 1) match = `${field} ${intervals[0]}`;
  else if (intervals.length) {
    const excepts = blocks.length === 1 ? blockIntervals(blocks[0]!.except.map((cidr) => ({ cidr })), f) : [];
    match = excepts.length ? `${field} ${blocks[0]!.cidr} ${field} != ${excepts.length === 1 ? excepts[0] : `{ ${excepts.join(", ")} }`}` : `${field} { ${intervals.join(", ")} }`;
  }
  blockMatches.set(key, match);
  return match;
}
