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
import { compileSelector, type LabelMatcher } from "./selector.ts";
import type {
  CNPEgressPeer, CNPNamespacedPod, CNPProtocol, CNPTier, ClusterState, Decider, Direction, KubeClusterNetworkPolicy, KubeNetworkPolicy,
  LabelSelector, NetworkPolicyPeer, NetworkPolicyPort, PodInfo, PolicyKind, Protocol,
} from "./types.ts";

/** A decider's policy as people name it: "namespace/name" for a NetworkPolicy, the name for a ClusterNetworkPolicy. */
export const policyName = (d: Pick<Decider, "namespace" | "name">): string => (d.namespace !== undefined ? `${d.namespace}/${d.name}` : d.name);

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

interface Resolved {
  pod?: PodInfo;
  ip?: string;
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
    const src = this.resolve(flow.src);
    const dst = this.resolve(flow.dst);
    const egress = src.pod && !src.pod.hostNetwork ? this.direction("egress", src.pod, dst, flow) : { allowed: true };
    const ingress = dst.pod && !dst.pod.hostNetwork ? this.direction("ingress", dst.pod, src, flow) : { allowed: true };
    const deniedIn: Direction | undefined = !egress.allowed ? "egress" : !ingress.allowed ? "ingress" : undefined;
    const by = deniedIn === "egress" ? egress.by : deniedIn === "ingress" ? ingress.by : ingress.by ?? egress.by;
    return { allowed: !deniedIn, ...(deniedIn ? { deniedIn } : {}), ...(by ? { by } : {}), egress, ingress };
  }

  /** One direction at `subject` (the destination for ingress, the source for egress); `peer` is the other end. */
  private direction(dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow): DirectionVerdict {
    // The pod whose named ports a port name refers to: always the destination.
    const dstPod = dir === "ingress" ? subject : peer.pod;
    const admin = this.tier(this.admin, dir, subject, peer, flow, dstPod);
    if (admin && admin.action !== "Pass") return { allowed: admin.action === "Accept", by: admin };
    const np = this.networkPolicies(dir, subject, peer, flow, dstPod);
    if (np) return np;
    const base = this.tier(this.baseline, dir, subject, peer, flow, dstPod);
    // Pass in the Baseline tier has nothing after it but the default: allow.
    if (base && base.action !== "Pass") return { allowed: base.action === "Accept", by: base };
    return { allowed: true, ...(admin ? { by: admin } : {}) };
  }

  // ---- ClusterNetworkPolicy

  private cnpPods(sel: CNPNamespacedPod, pod: PodInfo): boolean {
    // An absent namespaceSelector in a pods peer/subject is every namespace (the API: "empty selects all").
    return this.match(sel.namespaceSelector ?? {}, this.nsLabels(pod.namespace)) && this.match(sel.podSelector ?? {}, pod.labels);
  }

  private cnpSubject(p: KubeClusterNetworkPolicy, pod: PodInfo): boolean {
    const s = p.spec.subject;
    if (s.namespaces) return this.match(s.namespaces, this.nsLabels(pod.namespace));
    if (s.pods) return this.cnpPods(s.pods, pod);
    return false;
  }

  private cnpPeer(peer: CNPEgressPeer, other: Resolved): boolean {
    const pod = other.pod && !other.pod.hostNetwork ? other.pod : undefined;
    if (peer.namespaces) return !!pod && this.match(peer.namespaces, this.nsLabels(pod.namespace));
    if (peer.pods) return !!pod && this.cnpPods(peer.pods, pod);
    if (peer.networks) return peer.networks.some((c) => inCidr(c, other.ip));
    // nodes and domainNames: not supported (see unsupportedPeer).
    return false;
  }

  /**
   * A peer kind this implementation does not enforce (nodes, domainNames). The API's rule
   * for those: an Accept rule's unsupported peer matches nothing, and a Deny or Pass rule
   * with one is treated as a Deny of everything (fail closed: a Pass matching everything
   * would skip the later Admin Deny rules).
   */
  private unsupportedPeer(peer: CNPEgressPeer): boolean {
    return peer.nodes !== undefined || peer.domainNames !== undefined;
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

  private tier(list: KubeClusterNetworkPolicy[], dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow, dstPod: PodInfo | undefined): Decider | undefined {
    for (const p of list) {
      if (!this.cnpSubject(p, subject)) continue;
      const rules = (dir === "ingress" ? p.spec.ingress : p.spec.egress) ?? [];
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        const peers: CNPEgressPeer[] = dir === "ingress" ? (r as { from: CNPEgressPeer[] }).from : (r as { to: CNPEgressPeer[] }).to;
        // A rule's name, else its place: what the compiled rules' log names too.
        const rule = r.name || `${dir}[${i}]`;
        if (r.action !== "Accept" && peers.some((x) => this.unsupportedPeer(x))) {
          return { kind: "ClusterNetworkPolicy", name: p.metadata.name, rule, tier: p.spec.tier, action: "Deny", direction: dir };
        }
        if (!peers.some((x) => this.cnpPeer(x, peer))) continue;
        if (!this.cnpProtocols(r.protocols, flow, dstPod)) continue;
        return { kind: "ClusterNetworkPolicy", name: p.metadata.name, rule, tier: p.spec.tier, action: r.action, direction: dir };
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

  private npPeer(policyNs: string, peer: NetworkPolicyPeer, other: Resolved): boolean {
    if (peer.ipBlock) return inCidr(peer.ipBlock.cidr, other.ip) && !(peer.ipBlock.except ?? []).some((c) => inCidr(c, other.ip));
    const pod = other.pod && !other.pod.hostNetwork ? other.pod : undefined;
    if (!pod) return false;
    const nsOk = peer.namespaceSelector ? this.match(peer.namespaceSelector, this.nsLabels(pod.namespace)) : pod.namespace === policyNs;
    const podOk = peer.podSelector ? this.match(peer.podSelector, pod.labels) : true;
    return nsOk && podOk;
  }

  private npPort(p: NetworkPolicyPort, flow: Flow, dstPod: PodInfo | undefined): boolean {
    const protocol = p.protocol ?? "TCP";
    if (protocol !== flow.protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") return !!dstPod?.namedPorts.some((n) => n.name === p.port && n.port === flow.port && n.protocol === protocol);
    if (p.endPort !== undefined) return flow.port >= p.port && flow.port <= p.endPort;
    return p.port === flow.port;
  }

  private networkPolicies(dir: Direction, subject: PodInfo, peer: Resolved, flow: Flow, dstPod: PodInfo | undefined): DirectionVerdict | undefined {
    let isolatedBy: KubeNetworkPolicy | undefined;
    for (const p of [...this.state.networkPolicies.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
      const ns = p.metadata.namespace ?? "default";
      if (ns !== subject.namespace || !this.types(p).includes(dir) || !this.match(p.spec.podSelector, subject.labels)) continue;
      isolatedBy ??= p;
      const rules = (dir === "ingress" ? p.spec.ingress : p.spec.egress) ?? [];
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        const peers = (dir === "ingress" ? (r as { from?: NetworkPolicyPeer[] }).from : (r as { to?: NetworkPolicyPeer[] }).to) ?? [];
        if (peers.length > 0 && !peers.some((x) => this.npPeer(ns, x, peer))) continue;
        if (r.ports?.length && !r.ports.some((x) => this.npPort(x, flow, dstPod))) continue;
        return { allowed: true, by: { kind: "NetworkPolicy", namespace: ns, name: p.metadata.name, rule: `${dir}[${i}]`, direction: dir } };
      }
    }
    if (!isolatedBy) return undefined;
    return { allowed: false, by: { kind: "NetworkPolicy", namespace: isolatedBy.metadata.namespace ?? "default", name: isolatedBy.metadata.name, rule: "default-deny", direction: dir } };
  }
}
