// What the policies in force say about one flow, written from the API specifications and
// independent of the nftables compiler (src/agent/policy/), so `mncni lab check` can hold the
// dataplane against it:
// - NetworkPolicy v1: https://kubernetes.io/docs/concepts/services-networking/network-policies/
//   and https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
//   ("a pod is isolated for ingress if there is any NetworkPolicy that both selects the pod and
//   has Ingress in its policyTypes"; "the connections allowed are the union of what each
//   applicable policy would allow"; "both the egress policy on the source pod and the ingress
//   policy on the destination pod need to allow the connection"; policyTypes defaults to
//   Ingress, plus Egress when the policy has egress rules; a peer with both podSelector and
//   namespaceSelector selects the pods matching both; without namespaceSelector, the policy's
//   own namespace; empty `from`/`to` or `ports`: everything; protocol defaults to TCP; a named
//   port resolves on the destination pod; endPort makes port..endPort a range).
// - ClusterNetworkPolicy v1alpha2, Network Policy API project (github.com/kubernetes-sigs/
//   network-policy-api, apis/v1alpha2/clusternetworkpolicy_types.go and the NPEP-0 docs):
//   the Admin tier is evaluated before NetworkPolicy and the Baseline tier after it; within a
//   tier, lower priority first, rules in order, the first matching rule decides: Accept allows
//   (the later stages are skipped), Deny denies, Pass skips the rest of the Admin tier and
//   hands the flow to NetworkPolicy. No match anywhere: allowed. Peers an implementation does
//   not support (here `nodes` and `domainNames`): in an Accept rule they match nothing; a Deny
//   or Pass rule with one is treated as a Deny of everything (fail closed).
// - One owner per address (src/cluster/pod-addresses.ts): a finished pod (Succeeded, Failed)
//   is neither subject nor peer.
import { cidrContains } from "../net/cidr.ts";
import { addressOwners, isTerminal } from "./pod-addresses.ts";
import { familyOf } from "../net/ip.ts";
import { compileSelector, unmetRequirements, type LabelMatcher, type UnmetRequirement } from "./selector.ts";
import type {
  CNPAction, CNPEgressPeer, CNPNamespacedPod, CNPProtocol, CNPTier, ClusterState, Decider, Direction, KubeClusterNetworkPolicy, KubeNetworkPolicy,
  LabelSelector, NetworkPolicyPeer, NetworkPolicyPort, PodInfo, PolicyKind, Protocol,
} from "./types.ts";

/** A decider's policy as people name it: "namespace/name" for a NetworkPolicy, the name for a ClusterNetworkPolicy. */
export const policyName = (d: Pick<Decider, "namespace" | "name">): string => (d.namespace !== undefined ? `${d.namespace}/${d.name}` : d.name);

/**
 * The `rule` of a NetworkPolicy decider when no rule decided: the pod is isolated in that
 * direction (policies select it) and none of their rules allows the flow. Not a rule of any
 * policy: the name of the first isolating policy goes with it. The verdict log and the
 * compiler's records carry the same token (docs/policy.md).
 */
export const ISOLATED = "default-deny";

/**
 * A decider in words: "NetworkPolicy x/allow-c rule ingress[0]", "ClusterNetworkPolicy deny-y
 * rule no-y (tier Admin, Deny)", and for isolation "NetworkPolicy x/web: no rule allows it
 * (x/web isolates the pod for ingress)" — never a made-up rule name.
 */
export function describeDecider(d: Decider): string {
  if (d.kind === "NetworkPolicy" && d.rule === ISOLATED) return `NetworkPolicy ${policyName(d)}: no rule allows it (it isolates the pod for ${d.direction})`;
  return `${d.kind} ${policyName(d)} rule ${d.rule}${d.tier ? ` (tier ${d.tier}${d.action ? `, ${d.action}` : ""})` : ""}`;
}

/** One end of a flow: a pod (by "namespace/name"), or an address outside every pod. */
export type Endpoint = { pod: string; ip?: string } | { ip: string };

export interface Flow {
  src: Endpoint;
  dst: Endpoint;
  port: number;
  protocol: Protocol;
}

/** A policy selecting a pod in one direction. */
export interface SelectingPolicy {
  direction: Direction;
  kind: PolicyKind;
  /** NetworkPolicy: "namespace/name"; ClusterNetworkPolicy: its name. */
  name: string;
  tier: CNPTier | "NetworkPolicy";
  priority?: number;
}

export interface DirectionVerdict {
  allowed: boolean;
  by?: Decider;
}

export interface Verdict {
  allowed: boolean;
  /** The direction that denied (egress is judged first), or undefined when allowed. */
  deniedIn?: Direction;
  /** What decided the flow: the denying decider, else the ingress one, else the egress one. */
  by?: Decider;
  egress: DirectionVerdict;
  ingress: DirectionVerdict;
}

/**
 * Why one peer of a rule does not cover the other end of the flow (the source for ingress, the
 * destination for egress). Typed, for every renderer (src/cli/text/policy-why.ts).
 */
export type PeerMiss =
  /** The pod's labels do not satisfy the peer's podSelector: the requirements they miss. */
  | { kind: "podSelector"; selector: LabelSelector; unmet: UnmetRequirement[]; pod: string; labels: Record<string, string> }
  /** The pod's namespace's labels do not satisfy the peer's namespaceSelector (or a ClusterNetworkPolicy's `namespaces`). */
  | { kind: "namespaceSelector"; selector: LabelSelector; unmet: UnmetRequirement[]; pod: string; namespace: string; labels: Record<string, string> }
  /** A NetworkPolicy peer without namespaceSelector covers the policy's own namespace only. */
  | { kind: "namespace"; policyNamespace: string; pod: string; namespace: string }
  /** The peer selects pods; the other end is no pod (an address outside every pod, or a host-network pod). */
  | { kind: "notPod"; ip?: string; hostNetwork?: string }
  /** No CIDR of the peer (ipBlock, networks) holds the address, or an `except` entry takes it out. */
  | { kind: "cidr"; field: "ipBlock" | "networks"; cidrs: string[]; ip?: string; except?: string }
  /** A peer kind mncni does not enforce: in an Accept rule it matches nothing. */
  | { kind: "unsupported"; field: "nodes" | "domainNames" };

/** One rule of a policy as it was checked against the flow, in the policy's order. */
export interface RuleCheck {
  /** As the deciders name it: a ClusterNetworkPolicy rule's name, else "ingress[i]"/"egress[i]". */
  rule: string;
  /** Its place in the policy: "ingress[i]"/"egress[i]". */
  at: string;
  /** A ClusterNetworkPolicy rule's action. */
  action?: CNPAction;
  matched: boolean;
  /** When it did not match by its peers: each peer ("from[0]", "to[1]") and why it does not cover the other end. */
  peers?: { at: string; miss: PeerMiss }[];
  /** When its peers covered the other end but its ports did not: the flow's protocol and port, the rule's ports as written. */
  ports?: { protocol: Protocol; port: number; rule: string[] };
  /** A Deny or Pass rule naming a peer kind mncni does not enforce: treated as a Deny of everything (fail closed). */
  failClosed?: "nodes" | "domainNames";
}

/** A policy selecting the subject in the direction, with its rules as they were checked (up to the deciding one). */
export interface PolicyCheck {
  kind: PolicyKind;
  namespace?: string;
  name: string;
  tier: CNPTier | "NetworkPolicy";
  priority?: number;
  rules: RuleCheck[];
}

/** How a direction was decided, and every policy that took part, in evaluation order. */
export interface DirectionWhy {
  /** The pod judged ("namespace/name"); absent when that end is no pod (nothing judges it). */
  subject?: string;
  /**
   * "admin"/"baseline": a ClusterNetworkPolicy rule of that tier decided; "allowed-by-rule": a
   * NetworkPolicy rule allowed it; "isolated": NetworkPolicies select the pod in this direction
   * and none of their rules matched; "default": nothing decided (allowed); "not-judged": that end
   * is no pod, or a host-network pod (no policy applies there).
   */
  decided: "admin" | "allowed-by-rule" | "isolated" | "baseline" | "default" | "not-judged";
  policies: PolicyCheck[];
}

/** One direction's verdict with why. */
export interface ExplainedDirection extends DirectionVerdict {
  why: DirectionWhy;
}

/** A verdict with, for each direction, why (PolicyEvaluator.explain). */
export interface ExplainedVerdict extends Verdict {
  egress: ExplainedDirection;
  ingress: ExplainedDirection;
}

interface Resolved {
  pod?: PodInfo;
  ip?: string;
}

const podRef = (p: PodInfo) => `${p.namespace}/${p.name}`;

/** A NetworkPolicy port as written: "TCP/80", "UDP/53-60", "TCP/http", "TCP" (every port). */
const npPortText = (p: NetworkPolicyPort) => `${p.protocol ?? "TCP"}${p.port === undefined ? "" : `/${p.port}${p.endPort !== undefined ? `-${p.endPort}` : ""}`}`;

/** A ClusterNetworkPolicy protocol entry as written: "TCP/80", "UDP/53-60", "TCP" (every port), "named port http". */
function cnpProtocolText(p: CNPProtocol): string {
  if (p.destinationNamedPort !== undefined) return `named port ${p.destinationNamedPort}`;
  const [name, spec] = p.tcp ? ["TCP", p.tcp] : p.udp ? ["UDP", p.udp] : ["SCTP", p.sctp];
  const d = spec?.destinationPort;
  return d?.number !== undefined ? `${name}/${d.number}` : d?.range ? `${name}/${d.range.start}-${d.range.end}` : name;
}

function inCidr(cidr: string, ip: string | undefined): boolean {
  if (!ip || familyOf(cidr) !== familyOf(ip)) return false;
  try {
    return cidrContains(cidr, ip);
  } catch {
    return false;
  }
}

/** Pure evaluation of flows against one cluster state; selectors are compiled once. */
export class PolicyEvaluator {
  private readonly matchers = new Map<string, LabelMatcher>();
  private readonly admin: KubeClusterNetworkPolicy[];
  private readonly baseline: KubeClusterNetworkPolicy[];

  constructor(private readonly state: ClusterState) {
    // Same priority: the API leaves the order undefined; the name makes it deterministic.
    const byPriority = (a: KubeClusterNetworkPolicy, b: KubeClusterNetworkPolicy) =>
      a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name);
    const all = [...state.clusterNetworkPolicies.values()].sort(byPriority);
    this.admin = all.filter((p) => p.spec.tier === "Admin");
    this.baseline = all.filter((p) => p.spec.tier === "Baseline");
  }

  private match(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
    if (sel === undefined) return false;
    const key = JSON.stringify(sel);
    let m = this.matchers.get(key);
    if (!m) this.matchers.set(key, (m = compileSelector(sel)));
    return m(labels);
  }

  private nsLabels(ns: string): Record<string, string> {
    // A namespace without an object still carries its automatic name label (Kubernetes sets it).
    return { ...this.state.namespaces.get(ns)?.labels, "kubernetes.io/metadata.name": ns };
  }

  private owners?: Map<string, string>;

  /** The pod that owns an address (one owner per address: src/cluster/pod-addresses.ts). */
  private owner(ip: string): PodInfo | undefined {
    this.owners ??= addressOwners(this.state.pods);
    const k = this.owners.get(ip);
    return k === undefined ? undefined : this.state.pods.get(k);
  }

  private resolve(e: Endpoint): Resolved {
    if ("pod" in e) {
      const pod = this.state.pods.get(e.pod);
      if (!pod) throw new Error(`cannot evaluate flow endpoint "${e.pod}": no such pod in the cluster state`);
      const ip = e.ip ?? pod.podIPs[0];
      if (pod.hostNetwork || ip === undefined) return { pod, ip };
      // A finished pod's address, or one another pod owns, is that other pod's (or nobody's).
      const owner = this.owner(ip);
      if (owner) return { pod: owner, ip };
      return isTerminal(pod) ? { ip } : { pod, ip };
    }
    // An address that is a (non host-network, not finished) pod's is that pod.
    const pod = this.owner(e.ip);
    return pod ? { pod, ip: e.ip } : { ip: e.ip };
  }

  evaluate(flow: Flow): Verdict {
    return this.run(flow, false);
  }

  /**
   * The verdict with, per direction, every policy selecting the judged pod and each of its rules
   * as checked (why a peer, a namespace or a port did not match): what `explain` says.
   */
  explain(flow: Flow): ExplainedVerdict {
    return this.run(flow, true) as ExplainedVerdict;
  }

  private run(flow: Flow, why: boolean): Verdict {
    const src = this.resolve(flow.src);
    const dst = this.resolve(flow.dst);
    const notJudged = (): DirectionVerdict => ({ allowed: true, ...(why ? { why: { decided: "not-judged", policies: [] } } : {}) });
    const egress = src.pod && !src.pod.hostNetwork ? this.direction("egress", src.pod, dst, flow, why) : notJudged();
    const ingress = dst.pod && !dst.pod.hostNetwork ? this.direction("ingress", dst.pod, src, flow, why) : notJudged();
    const deniedIn: Direction | undefined = !egress.allowed ? "egress" : !ingress.allowed ? "ingress" : undefined;
    const by = deniedIn === "egress" ? egress.by : deniedIn === "ingress" ? ingress.by : ingress.by ?? egress.by;
    return { allowed: !deniedIn, ...(deniedIn ? { deniedIn } : {}), ...(by ? { by } : {}), egress, ingress };
  }

  /** One direction at `subject` (the destination for ingress, the source for egress); `peer` is the other end. */
  private direction(dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow, why: boolean): DirectionVerdict & { why?: DirectionWhy } {
    const trail: PolicyCheck[] | undefined = why ? [] : undefined;
    const done = (v: DirectionVerdict, decided: DirectionWhy["decided"]) => (trail ? { ...v, why: { subject: podRef(subject), decided, policies: trail } } : v);
    // The pod whose named ports a port name refers to: always the destination.
    const dstPod = dir === "ingress" ? subject : peer.pod;
    const admin = this.tier(this.admin, dir, subject, peer, flow, dstPod, trail);
    if (admin && admin.action !== "Pass") return done({ allowed: admin.action === "Accept", by: admin }, "admin");
    const np = this.networkPolicies(dir, subject, peer, flow, dstPod, trail);
    if (np) return done(np, np.allowed ? "allowed-by-rule" : "isolated");
    const base = this.tier(this.baseline, dir, subject, peer, flow, dstPod, trail);
    // Pass in the Baseline tier has nothing after it but the default: allow.
    if (base && base.action !== "Pass") return done({ allowed: base.action === "Accept", by: base }, "baseline");
    return done({ allowed: true, ...(admin ? { by: admin } : {}) }, "default");
  }

  /** A selector that does not select `labels`: the miss, with the requirements unmet when asked why. */
  private selectorMiss(sel: LabelSelector, labels: Record<string, string>, why: boolean): UnmetRequirement[] | undefined {
    if (this.match(sel, labels)) return undefined;
    return why ? unmetRequirements(sel, labels) : [];
  }

  /** The other end as a pod a pod peer can select, or why it is none. */
  private peerPod(other: Resolved): PodInfo | PeerMiss {
    if (other.pod && !other.pod.hostNetwork) return other.pod;
    return { kind: "notPod", ...(other.ip ? { ip: other.ip } : {}), ...(other.pod ? { hostNetwork: podRef(other.pod) } : {}) };
  }

  /** The first CIDR entry holding ip, or why none does. */
  private cidrMiss(field: "ipBlock" | "networks", cidrs: string[], except: string[], ip: string | undefined): PeerMiss | undefined {
    const out = except.find((c) => inCidr(c, ip));
    if (cidrs.some((c) => inCidr(c, ip)) && out === undefined) return undefined;
    return { kind: "cidr", field, cidrs, ...(ip ? { ip } : {}), ...(out ? { except: out } : {}) };
  }

  // ---- ClusterNetworkPolicy

  /** Does a pods selector (namespaceSelector and podSelector) select pod? Undefined when it does, else why not. */
  private cnpPodsMiss(sel: CNPNamespacedPod, pod: PodInfo, why: boolean): PeerMiss | undefined {
    // An absent namespaceSelector in a pods peer/subject is every namespace (the API: "empty selects all").
    const nsSel = sel.namespaceSelector ?? {};
    const nsLabels = this.nsLabels(pod.namespace);
    const nsUnmet = this.selectorMiss(nsSel, nsLabels, why);
    if (nsUnmet) return { kind: "namespaceSelector", selector: nsSel, unmet: nsUnmet, pod: podRef(pod), namespace: pod.namespace, labels: nsLabels };
    const podSel = sel.podSelector ?? {};
    const podUnmet = this.selectorMiss(podSel, pod.labels, why);
    if (podUnmet) return { kind: "podSelector", selector: podSel, unmet: podUnmet, pod: podRef(pod), labels: pod.labels };
    return undefined;
  }

  private cnpSubject(p: KubeClusterNetworkPolicy, pod: PodInfo): boolean {
    const s = p.spec.subject;
    if (s.namespaces) return this.match(s.namespaces, this.nsLabels(pod.namespace));
    if (s.pods) return !this.cnpPodsMiss(s.pods, pod, false);
    return false;
  }

  private cnpPeerMiss(peer: CNPEgressPeer, other: Resolved, why: boolean): PeerMiss | undefined {
    if (peer.namespaces || peer.pods) {
      const pod = this.peerPod(other);
      if ("kind" in pod) return pod;
      if (peer.pods) return this.cnpPodsMiss(peer.pods, pod, why);
      const labels = this.nsLabels(pod.namespace);
      const unmet = this.selectorMiss(peer.namespaces!, labels, why);
      return unmet ? { kind: "namespaceSelector", selector: peer.namespaces!, unmet, pod: podRef(pod), namespace: pod.namespace, labels } : undefined;
    }
    if (peer.networks) return this.cidrMiss("networks", peer.networks, [], other.ip);
    // nodes and domainNames: not supported (see unsupportedPeer).
    return { kind: "unsupported", field: peer.nodes !== undefined ? "nodes" : "domainNames" };
  }

  /**
   * A peer kind this implementation does not enforce (nodes, domainNames). The API's rule
   * for those: an Accept rule's unsupported peer matches nothing, and a Deny or Pass rule
   * with one is treated as a Deny of everything (fail closed: a Pass matching everything
   * would skip the later Admin Deny rules).
   */
  private unsupportedPeer(peer: CNPEgressPeer): "nodes" | "domainNames" | undefined {
    return peer.nodes !== undefined ? "nodes" : peer.domainNames !== undefined ? "domainNames" : undefined;
  }

  private cnpProtocols(protocols: CNPProtocol[] | undefined, flow: Flow, dstPod: PodInfo | undefined): boolean {
    if (!protocols || protocols.length === 0) return true;
    return protocols.some((p) => {
      if (p.destinationNamedPort !== undefined) {
        return !!dstPod?.namedPorts.some((n) => n.name === p.destinationNamedPort && n.port === flow.port && n.protocol === flow.protocol);
      }
      const spec = flow.protocol === "TCP" ? p.tcp : flow.protocol === "UDP" ? p.udp : p.sctp;
      if (spec === undefined) return false;
      const d = spec.destinationPort;
      if (!d) return true;
      if (d.number !== undefined) return d.number === flow.port;
      if (d.range) return flow.port >= d.range.start && flow.port <= d.range.end;
      return true;
    });
  }

  /** The peers of a rule against the other end: undefined when one covers it, else each peer's miss. */
  private peersMiss<P>(peers: P[], at: string, miss: (peer: P) => PeerMiss | undefined): { at: string; miss: PeerMiss }[] | undefined {
    const out: { at: string; miss: PeerMiss }[] = [];
    for (let j = 0; j < peers.length; j++) {
      const m = miss(peers[j]!);
      if (!m) return undefined;
      out.push({ at: `${at}[${j}]`, miss: m });
    }
    return out;
  }

  private tier(list: KubeClusterNetworkPolicy[], dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow, dstPod: PodInfo | undefined, trail?: PolicyCheck[]): Decider | undefined {
    const why = trail !== undefined;
    for (const p of list) {
      if (!this.cnpSubject(p, subject)) continue;
      const rules = (dir === "ingress" ? p.spec.ingress : p.spec.egress) ?? [];
      const checks: RuleCheck[] = [];
      if (trail && rules.length) trail.push({ kind: "ClusterNetworkPolicy", name: p.metadata.name, tier: p.spec.tier, priority: p.spec.priority, rules: checks });
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        const peers: CNPEgressPeer[] = dir === "ingress" ? (r as { from: CNPEgressPeer[] }).from : (r as { to: CNPEgressPeer[] }).to;
        const at = `${dir}[${i}]`;
        // A rule's name, else its place: what the compiled rules' log names too.
        const rule = r.name || at;
        const decider: Decider = { kind: "ClusterNetworkPolicy", name: p.metadata.name, rule, tier: p.spec.tier, action: r.action, direction: dir };
        const unsupported = r.action !== "Accept" ? peers.map((x) => this.unsupportedPeer(x)).find((x) => x !== undefined) : undefined;
        if (unsupported) {
          checks.push({ rule, at, action: "Deny", matched: true, failClosed: unsupported });
          return { ...decider, action: "Deny" };
        }
        const missed = this.peersMiss(peers, dir === "ingress" ? "from" : "to", (x) => this.cnpPeerMiss(x, peer, why));
        if (missed) {
          if (why) checks.push({ rule, at, action: r.action, matched: false, peers: missed });
          continue;
        }
        if (!this.cnpProtocols(r.protocols, flow, dstPod)) {
          if (why) checks.push({ rule, at, action: r.action, matched: false, ports: { protocol: flow.protocol, port: flow.port, rule: (r.protocols ?? []).map(cnpProtocolText) } });
          continue;
        }
        if (why) checks.push({ rule, at, action: r.action, matched: true });
        return decider;
      }
    }
    return undefined;
  }

  /**
   * The policies selecting a pod, per direction, in evaluation order (Admin tier by
   * priority, NetworkPolicies, Baseline tier): what `inspect` shows. Host-network and finished pods are
   * selected by nothing.
   */
  selecting(pod: PodInfo): SelectingPolicy[] {
    if (pod.hostNetwork || isTerminal(pod)) return [];
    const out: SelectingPolicy[] = [];
    const cnp = (list: KubeClusterNetworkPolicy[], tier: CNPTier) => {
      for (const p of list) {
        if (!this.cnpSubject(p, pod)) continue;
        for (const direction of ["ingress", "egress"] as const) {
          if (p.spec[direction]?.length) out.push({ direction, kind: "ClusterNetworkPolicy", name: p.metadata.name, tier, priority: p.spec.priority });
        }
      }
    };
    cnp(this.admin, "Admin");
    for (const p of this.state.networkPolicies.values()) {
      const ns = p.metadata.namespace ?? "default";
      if (ns !== pod.namespace || !this.match(p.spec.podSelector ?? {}, pod.labels)) continue;
      for (const direction of this.types(p)) out.push({ direction, kind: "NetworkPolicy", name: `${ns}/${p.metadata.name}`, tier: "NetworkPolicy" });
    }
    cnp(this.baseline, "Baseline");
    return out;
  }

  // ---- NetworkPolicy

  private types(p: KubeNetworkPolicy): Direction[] {
    if (p.spec.policyTypes?.length) return p.spec.policyTypes.map((t) => (t === "Ingress" ? "ingress" : "egress"));
    return p.spec.egress?.length ? ["ingress", "egress"] : ["ingress"];
  }

  private npPeerMiss(policyNs: string, peer: NetworkPolicyPeer, other: Resolved, why: boolean): PeerMiss | undefined {
    if (peer.ipBlock) return this.cidrMiss("ipBlock", [peer.ipBlock.cidr], peer.ipBlock.except ?? [], other.ip);
    const pod = this.peerPod(other);
    if ("kind" in pod) return pod;
    if (peer.namespaceSelector) {
      const labels = this.nsLabels(pod.namespace);
      const unmet = this.selectorMiss(peer.namespaceSelector, labels, why);
      if (unmet) return { kind: "namespaceSelector", selector: peer.namespaceSelector, unmet, pod: podRef(pod), namespace: pod.namespace, labels };
    } else if (pod.namespace !== policyNs) {
      return { kind: "namespace", policyNamespace: policyNs, pod: podRef(pod), namespace: pod.namespace };
    }
    if (!peer.podSelector) return undefined;
    const unmet = this.selectorMiss(peer.podSelector, pod.labels, why);
    return unmet ? { kind: "podSelector", selector: peer.podSelector, unmet, pod: podRef(pod), labels: pod.labels } : undefined;
  }

  private npPort(p: NetworkPolicyPort, flow: Flow, dstPod: PodInfo | undefined): boolean {
    const protocol = p.protocol ?? "TCP";
    if (protocol !== flow.protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") return !!dstPod?.namedPorts.some((n) => n.name === p.port && n.port === flow.port && n.protocol === protocol);
    if (p.endPort !== undefined) return flow.port >= p.port && flow.port <= p.endPort;
    return p.port === flow.port;
  }

  private networkPolicies(dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow, dstPod: PodInfo | undefined, trail?: PolicyCheck[]): DirectionVerdict | undefined {
    const why = trail !== undefined;
    let isolatedBy: KubeNetworkPolicy | undefined;
    for (const p of [...this.state.networkPolicies.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const ns = p.metadata.namespace ?? "default";
      if (ns !== subject.namespace || !this.types(p).includes(dir) || !this.match(p.spec.podSelector, subject.labels)) continue;
      isolatedBy ??= p;
      const rules = (dir === "ingress" ? p.spec.ingress : p.spec.egress) ?? [];
      const checks: RuleCheck[] = [];
      if (trail) trail.push({ kind: "NetworkPolicy", namespace: ns, name: p.metadata.name, tier: "NetworkPolicy", rules: checks });
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        const at = `${dir}[${i}]`;
        const peers = (dir === "ingress" ? (r as { from?: NetworkPolicyPeer[] }).from : (r as { to?: NetworkPolicyPeer[] }).to) ?? [];
        const missed = peers.length > 0 ? this.peersMiss(peers, dir === "ingress" ? "from" : "to", (x) => this.npPeerMiss(ns, x, peer, why)) : undefined;
        if (missed) {
          if (why) checks.push({ rule: at, at, matched: false, peers: missed });
          continue;
        }
        if (r.ports?.length && !r.ports.some((x) => this.npPort(x, flow, dstPod))) {
          if (why) checks.push({ rule: at, at, matched: false, ports: { protocol: flow.protocol, port: flow.port, rule: r.ports.map(npPortText) } });
          continue;
        }
        if (why) checks.push({ rule: at, at, matched: true });
        return { allowed: true, by: { kind: "NetworkPolicy", namespace: ns, name: p.metadata.name, rule: at, direction: dir } };
      }
    }
    if (!isolatedBy) return undefined;
    // Not a rule: the pod is isolated in this direction and no rule allows the flow; the first isolating policy is named.
    return { allowed: false, by: { kind: "NetworkPolicy", namespace: isolatedBy.metadata.namespace ?? "default", name: isolatedBy.metadata.name, rule: ISOLATED, direction: dir } };
  }
}
