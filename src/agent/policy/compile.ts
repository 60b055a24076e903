// The policy compiler: cluster state -> the nftables table `inet mncni-policy` for this node's
// pods. Pure. Layout (docs/policy.md has the diagram):
//
//   chain forward (hook forward): ct established,related accept; then the source pod's egress
//     chain through the verdict map egress_4/6 (pod IP -> jump), then the destination pod's
//     ingress chain through ingress_4/6. A pod in neither map is selected by no policy and
//     passes untouched.
//   chain DIR/NS/POD       the Admin tier: CNPs selecting the pod, by priority, rules in order;
//                          Accept -> return (allowed in this direction), Deny -> drop,
//                          Pass -> goto DIR/NS/POD/np; at the end goto DIR/NS/POD/np.
//   chain DIR/NS/POD/np    NetworkPolicy: when a policy isolates the pod in DIR, the union of
//                          their rules -> return, else drop; not isolated: goto .../base.
//   chain DIR/NS/POD/base  the Baseline tier: Accept or Pass -> return, Deny -> drop; then return.
//
// `return` ends the per-pod chain and goes back to the forward chain, so an egress allow still
// meets the destination's ingress chain. Peers that are pods are named sets (pods_N_4/6), one
// per distinct selector pair, so a pod coming or going changes set elements only.
import { createHash } from "node:crypto";
import type {
  CNPAction, CNPEgressPeer, CNPIngressPeer, CNPProtocol, ClusterState, KubeClusterNetworkPolicy, KubeNetworkPolicy,
  NetworkPolicyPeer, NetworkPolicyPort, PodInfo, Protocol,
} from "../../cluster/types.ts";
import { compileSelector } from "../../cluster/index.ts";
import { type Family, familyOf } from "../../net/ip.ts";
import { normalizeCIDR } from "../../net/cidr.ts";
import { PodIndex, policyPods, queryKey, type PodQuery } from "./peers.ts";

export const POLICY_TABLE = "mncni-policy";
export const POLICY_FAMILY = "inet";
export const POLICY_MARKER = "mncni-policy ruleset ";

export type Direction = "ingress" | "egress";
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

/** The policy and rule that decided a flow: what a verdict log line names. */
export interface Decider {
  kind: "NetworkPolicy" | "ClusterNetworkPolicy";
  namespace?: string;
  name: string;
  /** The rule's name (ClusterNetworkPolicy) or "ingress[i]"/"egress[i]"; "default-deny" when a NetworkPolicy isolates and no rule allows. */
  rule: string;
  tier?: "Admin" | "Baseline";
  direction: Direction;
}

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

export interface CompiledPolicy {
  /** The table body (without `table ... { }`), stable for equal input. */
  body: string;
  /** Hash of the body, kept in the marker comment: tells whether the kernel has it. */
  hash: string;
  /** This node's pods that some policy selects, per direction ("ns/name"). */
  selected: Record<Direction, string[]>;
  /** Rules in the per-pod chains (the ruleset's size, for logs and the benchmark). */
  rules: number;
  /** Log prefix id -> the policy and rule it names. */
  deciders: Map<string, Decider>;
}

export interface CompileInput {
  state: ClusterState;
  nodeName: string;
  /** Log accepted flows too (denied ones always are). */
  logAccepts?: boolean;
}

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

function cnpPeer(p: CNPIngressPeer | CNPEgressPeer, action: CNPAction): Peer[] {
  if (p.namespaces) return [{ kind: "pods", query: { namespaces: p.namespaces, pods: {} } }];
  if (p.pods) return [{ kind: "pods", query: { namespaces: p.pods.namespaceSelector ?? {}, pods: p.pods.podSelector } }];
  const e = p as CNPEgressPeer;
  if (e.networks) {
    return e.networks.map((c) => {
      const cidr = normalizeCIDR(c);
      return { kind: "cidr", family: familyOf(cidr), cidr, except: [] };
    });
  }
  // nodes and domainNames are not enforced (docs/policy.md, limits). The API's fail-closed
  // rule for peers an implementation cannot use: Accept matches nothing, Deny and Pass match all.
  return [action === "Accept" ? { kind: "none" } : { kind: "any" }];
}

function cnpPort(p: CNPProtocol): PortMatch {
  if (p.destinationNamedPort !== undefined) return { kind: "named", name: p.destinationNamedPort };
  const [key, protocol] = p.tcp ? (["tcp", "TCP"] as const) : p.udp ? (["udp", "UDP"] as const) : (["sctp", "SCTP"] as const);
  const dp = p[key]!.destinationPort;
  if (!dp) return { kind: "proto", protocol };
  return dp.range ? { kind: "proto", protocol, from: dp.range.start, to: dp.range.end } : { kind: "proto", protocol, from: dp.number, to: dp.number };
}

/** policyTypes as the API defaults them: Ingress always, Egress when egress rules are given. */
export function npTypes(np: KubeNetworkPolicy): Direction[] {
  const t = np.spec.policyTypes;
  if (t?.length) return DIRECTIONS.filter((d) => t.includes(d === "ingress" ? "Ingress" : "Egress"));
  return np.spec.egress?.length ? ["ingress", "egress"] : ["ingress"];
}

function cnpSelects(index: PodIndex, cnp: KubeClusterNetworkPolicy): Set<PodInfo> {
  const s = cnp.spec.subject;
  const q: PodQuery = s.namespaces ? { namespaces: s.namespaces, pods: {} } : { namespaces: s.pods!.namespaceSelector ?? {}, pods: s.pods!.podSelector };
  return new Set(index.select(q));
}

const ACTION_VERDICT: Record<"Admin" | "Baseline", Record<CNPAction, Verdict>> = {
  Admin: { Accept: "return", Deny: "drop", Pass: "next" },
  Baseline: { Accept: "return", Deny: "drop", Pass: "return" },
};

function cnpRules(cnp: KubeClusterNetworkPolicy, dir: Direction): Rule[] {
  const rules = dir === "ingress" ? cnp.spec.ingress ?? [] : cnp.spec.egress ?? [];
  return rules.map((r, i) => {
    const peers = (dir === "ingress" ? (r as { from: CNPIngressPeer[] }).from : (r as { to: CNPEgressPeer[] }).to).flatMap((p) => cnpPeer(p, r.action));
    return {
      peers,
      ports: r.protocols?.length ? r.protocols.map(cnpPort) : [{ kind: "any" }],
      verdict: ACTION_VERDICT[cnp.spec.tier][r.action],
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
const addrField = (dir: Direction) => (dir === "ingress" ? "saddr" : "daddr");
const l4 = (p: Protocol) => p.toLowerCase();

/** Renders the compiled rules of one chain; named sets are registered in `sets` as needed. */
class Renderer {
  /** Set name -> its elements, per family: `pods_N_4`. */
  readonly sets = new Map<string, { family: Family; elements: string[] }>();
  private readonly setOf = new Map<string, string>();

  constructor(private readonly index: PodIndex) {}

  private podSet(q: PodQuery, f: Family): string {
    const k = queryKey(q);
    let base = this.setOf.get(k);
    if (!base) {
      base = `pods_${this.setOf.size}`;
      this.setOf.set(k, base);
      const pods = this.index.select(q);
      for (const fam of [4, 6] as const) {
        this.sets.set(`${base}_${fam}`, { family: fam, elements: pods.flatMap((p) => p.podIPs.filter((a) => familyOf(a) === fam)) });
      }
    }
    return `${base}_${f}`;
  }

  /** Port matches, with the owner pod resolving named ports (ingress); undefined: no match. */
  private portExpr(m: PortMatch, pod?: PodInfo): string[] {
    if (m.kind === "any") return [""];
    if (m.kind === "proto") {
      const range = m.from === undefined ? "" : m.from === m.to ? ` th dport ${m.from}` : ` th dport ${m.from}-${m.to}`;
      return [`meta l4proto ${l4(m.protocol)}${range}`];
    }
    if (!pod) return [];
    return pod.namedPorts.filter((n) => n.name === m.name && (!m.protocol || n.protocol === m.protocol))
      .map((n) => `meta l4proto ${l4(n.protocol)} th dport ${n.port}`);
  }

  /** The match expressions (each one nft rule's matches) of a rule, for the pod owning the chain. */
  matches(rule: Rule, dir: Direction, owner: PodInfo): string[] {
    const out: string[] = [];
    const field = addrField(dir);
    for (const peer of rule.peers) {
      if (peer.kind === "none") continue;
      for (const port of rule.ports) {
        // A named port is the destination's: the owner's for ingress, each peer pod's for egress.
        if (port.kind === "named" && dir === "egress") {
          if (peer.kind !== "pods") continue; // an address block has no container ports
          const byPort = new Map<string, string[]>();
          for (const p of this.index.select(peer.query)) {
            for (const e of this.portExpr(port, p)) for (const a of p.podIPs) byPort.set(`${familyOf(a)} ${e}`, [...(byPort.get(`${familyOf(a)} ${e}`) ?? []), a]);
          }
          for (const [k, addrs] of byPort) {
            const [f, ...e] = k.split(" ");
            out.push(`${ip(Number(f) as Family)} ${field} { ${addrs.join(", ")} } ${e.join(" ")}`);
          }
          continue;
        }
        for (const pe of this.portExpr(port, owner)) {
          if (peer.kind === "any") out.push(pe);
          else if (peer.kind === "cidr") {
            const p = ip(peer.family);
            const except = peer.except.length ? ` ${p} ${field} != { ${peer.except.join(", ")} }` : "";
            out.push(`${p} ${field} ${peer.cidr}${except}${pe ? ` ${pe}` : ""}`);
          } else {
            for (const f of [4, 6] as const) out.push(`${ip(f)} ${field} @${this.podSet(peer.query, f)}${pe ? ` ${pe}` : ""}`);
          }
        }
      }
    }
    return out;
  }
}

const chainName = (dir: Direction, p: PodInfo, stage?: "np" | "base") => `${dir}/${p.namespace}/${p.name}${stage ? `/${stage}` : ""}`;
const comment = (tag: string) => `comment "${tag.replace(/"/g, "'").slice(0, 120)}"`;

/** Compiles the state's policies for this node's pods. Throws only on a selector the validation let through. */
export function compilePolicy(input: CompileInput): CompiledPolicy {
  const { state, nodeName } = input;
  const index = new PodIndex(state);
  const r = new Renderer(index);
  const local = policyPods(state).filter((p) => p.nodeName === nodeName).sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  const cnps = [...state.clusterNetworkPolicies.values()].sort((a, b) => a.spec.priority - b.spec.priority || (a.metadata.name < b.metadata.name ? -1 : 1));
  const cnpSubjects = new Map(cnps.map((c) => [c, cnpSelects(index, c)]));
  const nps = [...state.networkPolicies.values()].map((np) => ({ np, match: compileSelector(np.spec.podSelector), types: npTypes(np) }));

  const chains: string[] = [];
  const maps: Record<string, string[]> = { ingress_4: [], ingress_6: [], egress_4: [], egress_6: [] };
  const selected: Record<Direction, string[]> = { ingress: [], egress: [] };
  let ruleCount = 0;
  const chain = (name: string, lines: string[]) => {
    ruleCount += lines.length;
    chains.push(`  chain ${name} {\n${lines.map((l) => `    ${l}\n`).join("")}  }`);
  };
  const deciders = new Map<string, Decider>();
  /** The log rule before a verdict (drops always, accepts when asked), or nothing. */
  const logRule = (m: string, verdict: string, who: Decider): string[] => {
    const v = verdict === "drop" ? "D" : verdict === "return" && input.logAccepts ? "A" : undefined;
    if (!v) return [];
    const id = deciderId(who);
    deciders.set(id, who);
    return [`${m ? `${m} ` : ""}${LOG_LIMIT} log prefix "${logPrefix(v, id)}" group ${NFLOG_GROUP}`];
  };
  const emit = (rules: Rule[], dir: Direction, pod: PodInfo, next: string): string[] =>
    rules.flatMap((rule) => {
      const verdict = rule.verdict === "next" ? `goto ${next}` : rule.verdict;
      return r.matches(rule, dir, pod).flatMap((m) => [...logRule(m, verdict, rule.who), `${m ? `${m} ` : ""}counter ${verdict} ${comment(rule.tag)}`]);
    });

  for (const pod of local) {
    for (const dir of DIRECTIONS) {
      const has = (c: KubeClusterNetworkPolicy) => cnpSubjects.get(c)!.has(pod) && (dir === "ingress" ? c.spec.ingress : c.spec.egress)?.length;
      const admin = cnps.filter((c) => c.spec.tier === "Admin" && has(c));
      const baseline = cnps.filter((c) => c.spec.tier === "Baseline" && has(c));
      const isolating = nps.filter((n) => n.np.metadata.namespace === pod.namespace && n.types.includes(dir) && n.match(pod.labels)).map((n) => n.np);
      if (!admin.length && !baseline.length && !isolating.length) continue;
      selected[dir].push(`${pod.namespace}/${pod.name}`);
      const npChain = chainName(dir, pod, "np");
      const baseChain = chainName(dir, pod, "base");
      chain(chainName(dir, pod), [...emit(admin.flatMap((c) => cnpRules(c, dir)), dir, pod, npChain), `goto ${npChain}`]);
      // Isolated and no rule allowed: the log names the first isolating policy.
      const isolatedBy: Decider = { kind: "NetworkPolicy", namespace: pod.namespace, name: isolating[0]?.metadata.name ?? "", rule: "default-deny", direction: dir };
      chain(npChain, isolating.length
        ? [...emit(isolating.flatMap((np) => npRules(np, dir)), dir, pod, baseChain), ...logRule("", "drop", isolatedBy), `counter drop ${comment(`np ${pod.namespace} ${dir} isolated: no rule allows`)}`]
        : [`goto ${baseChain}`]);
      chain(baseChain, [...emit(baseline.flatMap((c) => cnpRules(c, dir)), dir, pod, baseChain), "return"]);
      for (const a of pod.podIPs) maps[`${dir}_${familyOf(a)}`]!.push(`${a} : jump ${chainName(dir, pod)}`);
    }
  }

  const type = (f: Family) => (f === 4 ? "ipv4_addr" : "ipv6_addr");
  const setLines = [...r.sets].map(([name, s]) =>
    `  set ${name} {\n    type ${type(s.family)}\n${s.elements.length ? `    elements = { ${s.elements.join(", ")} }\n` : ""}  }`);
  const mapLines = Object.entries(maps).map(([name, els]) =>
    `  map ${name} {\n    type ${type(name.endsWith("4") ? 4 : 6)} : verdict\n${els.length ? `    elements = { ${els.join(", ")} }\n` : ""}  }`);
  const forward = [
    "  chain forward {",
    "    type filter hook forward priority filter + 10; policy accept;",
    // Replies of allowed connections: the first packet was checked both ways.
    "    ct state established,related accept",
    "    ip saddr vmap @egress_4",
    "    ip6 saddr vmap @egress_6",
    "    ip daddr vmap @ingress_4",
    "    ip6 daddr vmap @ingress_6",
    "  }",
  ].join("\n");
  const body = [...setLines, ...chains, ...mapLines, forward].join("\n");
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 16);
  return { body, hash, selected, rules: ruleCount, deciders };
}
