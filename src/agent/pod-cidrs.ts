// Which pod CIDRs of the Nodes the agent uses: a Node's spec is not trusted (issue 18). Every
// later step (routes, masquerade, forward accepts, the conflist) sees only what passes here.
// Refused, each reported as a problem (not ready, mncni_agent_problems):
// - a CIDR outside the cluster CIDR of its family (when one is configured), and a default route;
// - a CIDR overlapping a connected subnet of this node's underlay (the route would cut the node
//   off from its neighbours);
// - a second CIDR of one family on a Node (pods would get two addresses of the family);
// - a CIDR that replaces, in place, one in use (its pods would be stranded): the old one stays;
// - a CIDR overlapping another Node's: established Nodes are never displaced by a newcomer.
// "Established" is the same on every agent as far as the cluster state tells: CIDRs already in
// use here (routed, or this node's conflist) are claimed first, then those of older Nodes
// (metadata.creationTimestamp), then by Node name.
import type { NodeInfo } from "../cluster/types.ts";
import { connectedSubnets, type LocalAddr } from "./routing/backend.ts";
import { type Family, familyOf } from "../net/ip.ts";
import { cidrContains, CIDRIndex } from "../net/cidr.ts";

export interface AdmissionInput {
  self: string;
  nodes: ReadonlyMap<string, NodeInfo>;
  clusterCidr: readonly string[];
  /** This node's addresses: their subnets outside the pod network are the underlay. */
  localAddrs: readonly LocalAddr[];
  /** Pod CIDRs in use per node: admitted by the last pass (peers), written in the conflist (this node). */
  inUse: ReadonlyMap<string, readonly string[]>;
  /** Kept by the caller from pass to pass; optional. */
  memo?: FaultMemo;
}

/**
 * Faults found by earlier passes, per CIDR, valid while the limits (cluster CIDRs, underlay)
 * are the same: a change of one Node among a thousand re-checks one CIDR.
 */
export interface FaultMemo {
  limits?: string;
  faults: Map<string, string | undefined>;
}

export interface Admission {
  /** Admitted pod CIDRs of every node in the state (at most one per family, the Node's order kept). */
  podCIDRs: Map<string, string[]>;
  problems: string[];
}

const byFamily = (cidrs: readonly string[], f: Family) => cidrs.find((c) => familyOf(c) === f);

/**
 * Subnets of this node's addresses that are underlay, not pod side: a bridge gateway (inside
 * the cluster CIDR or the node's own pod CIDR) is not underlay; the subnet of an InternalIP is.
 */
function underlaySubnets(i: AdmissionInput): string[] {
  const me = i.nodes.get(i.self);
  const ips = me?.internalIPs ?? [];
  const podSide = [...i.clusterCidr, ...(me?.podCIDRs ?? []), ...(i.inUse.get(i.self) ?? [])];
  return connectedSubnets(i.localAddrs).filter((s) => ips.some((ip) => cidrContains(s, ip)) || !podSide.some((p) => cidrContains(p, s)));
}

/** What a CIDR is checked against, whatever the other Nodes claim; indexed once per pass (a thousand Nodes). */
interface Limits {
  cluster: CIDRIndex<string>;
  clusterText: Record<Family, string>;
  underlay: CIDRIndex<string>;
}

function makeLimits(clusterCidr: readonly string[], underlay: string[]): Limits {
  const cluster = new CIDRIndex<string>();
  for (const c of clusterCidr) cluster.add(c, c);
  const idx = new CIDRIndex<string>();
  for (const u of underlay) idx.add(u, u);
  const ofFamily = (f: Family) => clusterCidr.filter((c) => familyOf(c) === f).join(", ");
  return { cluster, clusterText: { 4: ofFamily(4), 6: ofFamily(6) }, underlay: idx };
}

/** A CIDR's own faults; undefined when it is usable. */
function fault(cidr: string, l: Limits): string | undefined {
  if (cidr.endsWith("/0")) return "a default route cannot be a pod CIDR";
  const f = familyOf(cidr);
  if (l.clusterText[f] && l.cluster.container(cidr) === undefined) return `outside the cluster CIDR (${l.clusterText[f]})`;
  const hit = l.underlay.overlapping(cidr);
  if (hit) return `overlaps the connected subnet "${hit}" of this node's underlay`;
  return undefined;
}

/** When a Node was created (ms since the epoch); unknown sorts last, as the newest. */
const age = (n: NodeInfo) => {
  const t = n.created ? Date.parse(n.created) : NaN;
  return Number.isNaN(t) ? Infinity : t;
};

/**
 * Idempotent: given its own result as the pod CIDRs in use, it returns that result again (what
 * it admitted never overlaps, and is claimed first), so a pass may reuse it while nothing changed.
 */
export function admitPodCIDRs(i: AdmissionInput): Admission {
  const underlay = underlaySubnets(i);
  const key = JSON.stringify([i.clusterCidr, underlay]);
  const memo = i.memo?.limits === key ? i.memo.faults : new Map<string, string | undefined>();
  const seen = new Map<string, string | undefined>();
  let limits: Limits | undefined;
  const faultOf = (cidr: string) => {
    if (!seen.has(cidr)) seen.set(cidr, memo.has(cidr) ? memo.get(cidr) : fault(cidr, (limits ??= makeLimits(i.clusterCidr, underlay))));
    return seen.get(cidr);
  };
  // Problems are kept per node and listed in the state's order: the same text on every pass.
  const problemsOf = new Map<string, string[]>();
  const refuse = (cidr: string, node: string, why: string) => problemsOf.get(node)!.push(`cannot use pod CIDR "${cidr}" of node "${node}": ${why}`);
  // Each node's candidates, its own faults checked; overlaps between nodes come after.
  const candidates: { node: NodeInfo; cidrs: string[] }[] = [];
  const entries: { node: NodeInfo; cidr: string; established: boolean; age: number }[] = [];
  for (const node of i.nodes.values()) {
    problemsOf.set(node.name, node.problems.map((p) => `cannot use node "${node.name}": ${p}`));
    const inUse = i.inUse.get(node.name) ?? [];
    const cidrs: string[] = [];
    for (const cidr of node.podCIDRs) {
      const f = familyOf(cidr);
      const first = byFamily(node.podCIDRs, f)!;
      if (first !== cidr) {
        refuse(cidr, node.name, `the node already has IPv${f} pod CIDR "${first}" (one per family)`);
        continue;
      }
      const used = byFamily(inUse, f);
      if (used !== undefined && used !== cidr) {
        refuse(cidr, node.name, `changed in place from "${used}", which is in use (its pods would be stranded); keeping "${used}"`);
        cidrs.push(used);
        continue;
      }
      const why = faultOf(cidr);
      if (why) refuse(cidr, node.name, why);
      else cidrs.push(cidr);
    }
    candidates.push({ node, cidrs });
    const created = age(node);
    for (const cidr of cidrs) entries.push({ node, cidr, established: inUse.includes(cidr), age: created });
  }
  // Per CIDR, not per Node: a Node established in one family does not jump the queue in another.
  entries.sort((a, b) =>
    Number(b.established) - Number(a.established) || a.age - b.age || (a.node.name < b.node.name ? -1 : a.node.name > b.node.name ? 1 : 0));
  const claimed = new CIDRIndex<{ cidr: string; node: string }>();
  const accepted = new Set<string>();
  for (const { node, cidr } of entries) {
    const clash = claimed.overlapping(cidr);
    if (clash) {
      refuse(cidr, node.name, `overlaps "${clash.cidr}" of node "${clash.node}", which was there first; skipping it`);
      continue;
    }
    claimed.add(cidr, { cidr, node: node.name });
    accepted.add(`${node.name}\0${cidr}`);
  }
  const podCIDRs = new Map<string, string[]>();
  for (const { node, cidrs } of candidates) podCIDRs.set(node.name, cidrs.filter((c) => accepted.has(`${node.name}\0${c}`)));
  const problems = [...problemsOf.values()].flat();
  if (i.memo) Object.assign(i.memo, { limits: key, faults: seen });
  return { podCIDRs, problems };
}
