// `explain` as one call that returns its result (the CLI renders it, as text or --json; a web
// UI would too): the computed path (explain.ts), the verdict the policy evaluator expects
// (explain-policy.ts), and with a probe the kernel's trace of a real packet (explain-probe.ts)
// and every difference between them.
import type { ClusterState } from "../cluster/types.ts";
import { HOLD } from "../firewall/names.ts";
import { computePath, type Endpoint, type Explanation, type Hop, type Place, type ProbeAccount, type ReplyPath } from "./explain.ts";
import type { NodeView } from "../cni/node-view.ts";
import { flowFastPath, nodeFastPath, type NodeFastPath } from "./fast-path.ts";
import { expectPolicy, policyAt, policyDecisions, policyMismatches, tracedPolicy } from "./explain-policy.ts";
import { probePath } from "./explain-probe.ts";
import type { ProbeProto } from "./probe.ts";

export interface ExplainOptions {
  proto: ProbeProto;
  port: number;
  /** Send a real packet traced by nftables and compare. */
  probe: boolean;
  /** Send from this source address instead of the source's own (a spoofing pod). */
  spoofSrc?: string;
  /** The cluster state the agents read: the evaluator's verdict, checked against the probe. */
  cluster?: ClusterState;
  /** The nodes' CNI views: whether the fast path carries the packet (nodes whose conflist turns it on). */
  nodes?: readonly NodeView[];
}

/** The path of one packet from src to dst through the namespaces of `places`. */
export function explainPacket(places: Place[], src: Endpoint, dst: string, o: ExplainOptions): Explanation {
  const from: Endpoint = o.spoofSrc ? { ...src, ip: o.spoofSrc } : src;
  // A node as the source has no address until the kernel picks one: the evaluator needs it.
  const expected = o.cluster && from.ip ? expectPolicy(o.cluster, from.ip, dst, o.proto, o.port) : undefined;
  const ex = computePath(places, from, dst, o.proto, o.port, expected ? policyAt(expected) : undefined);
  if (expected) ex.policy = { expected };
  if (o.proto === "tcp" && ex.outcome === "delivered") ex.reply = replyPath(places, ex);
  const fast = fastPathOf(places, from, ex, o);
  if (fast) ex.fastPath = fast;
  if (o.probe) {
    ex.probe = probePath(places, ex, o.spoofSrc !== undefined);
    const traced = tracedPolicy(ex.probe.places, o.cluster ? policyDecisions(o.cluster) : new Map());
    if (traced) ex.policy = { ...ex.policy, traced };
    // Dropped by the hold (computed or traced): the pod is not yet programmed, no policy to compare.
    const held = ex.hops.some((h) => h.held) || ex.probe.places.some((t) => t.droppedBy?.includes(HOLD.name));
    ex.probe.mismatches.push(...policyMismatches(expected, traced, ex.probe.places.some((t) => t.verdict === "dropped"), held));
    // Each node whose program carries it (the source's, the destination's across nodes): both ways.
    for (const node of fast ? [fast, ...(fast.arrival ? [fast.arrival] : [])].filter((f) => f.redirected).map((f) => f.node) : []) {
      fastPathProbe(ex.probe, node);
      if (ex.reply?.probe) fastPathProbe(ex.reply.probe, node);
    }
  }
  return ex;
}

/**
 * The fast path's answer for a packet from a pod of a node that runs it, and across nodes for
 * its arrival on the destination pod's node when that one runs it (whatever the source's does).
 */
function fastPathOf(places: Place[], src: Endpoint, ex: Explanation, o: ExplainOptions): Explanation["fastPath"] {
  const node = src.place?.kind === "pod" ? src.place.node : undefined;
  const view = node ? o.nodes?.find((n) => n.name === node) : undefined;
  const last = ex.hops[ex.hops.length - 1];
  const dstPlace = ex.outcome === "delivered" && last ? places.find((p) => p.name === last.place) : undefined;
  const dstNode = dstPlace?.kind === "pod" ? dstPlace.node : undefined;
  const dstView = dstNode && dstNode !== node ? o.nodes?.find((n) => n.name === dstNode && n.fastPath) : undefined;
  if (!node || !src.ip || (!view?.fastPath && !dstView)) return undefined;
  const views = new Map<string, NodeFastPath>();
  if (view?.fastPath) views.set(node, nodeFastPath(view, o.cluster));
  if (dstView) views.set(dstView.name, nodeFastPath(dstView, o.cluster));
  const f = flowFastPath({ ip: src.ip, node }, { ip: ex.dst, ...(dstNode ? { node: dstNode } : {}) }, ex.proto, views);
  return { node, ...f };
}

/**
 * A redirected packet goes from the source pod's device straight into the destination pod: the
 * node's hooks never see it. That is what the probe must find: the node not seen is the
 * fast path, the node seeing it is a mismatch (the stack carried what should skip it).
 */
function fastPathProbe(p: ProbeAccount, node: string): void {
  const notSeen = `computed path crosses "${node}", the traced packet was not seen there`;
  const seen = p.places.some((t) => t.place === node && t.verdict !== "not seen");
  p.mismatches = p.mismatches.filter((m) => m !== notSeen);
  if (seen) p.mismatches.push(`the fast path should carry it past "${node}", but the node's stack saw it`);
}

/**
 * A TCP connection needs the way back too: the SYN-ACK from where the SYN was delivered to the
 * source it arrived with. Where that source was masqueraded, the reply is delivered to the
 * masquerading node, whose conntrack gives it back its first destination: the path goes on
 * from there to the original source.
 */
function replyPath(places: Place[], ex: Explanation): ReplyPath {
  const byName = new Map(places.map((p) => [p.name, p]));
  const last = ex.hops[ex.hops.length - 1]!;
  const back = computePath(places, { place: byName.get(last.place)!, ip: ex.dst }, last.source, ex.proto, ex.port, undefined, { reply: true });
  const natAt = ex.hops.find((h) => h.masquerade);
  const end = back.hops[back.hops.length - 1];
  if (natAt && back.outcome === "delivered" && end?.place === natAt.place) {
    const on = computePath(places, { place: byName.get(natAt.place)!, ip: ex.dst }, ex.src, ex.proto, ex.port, undefined, { reply: true });
    const [first, ...more] = on.hops;
    // The node's hop: it arrived as the reply did, and is routed on after de-NAT.
    const joined: Hop = { ...first!, ...(end.iif ? { iif: end.iif } : {}), source: ex.dst };
    return { src: ex.dst, dst: last.source, hops: [...back.hops.slice(0, -1), joined, ...more], outcome: on.outcome };
  }
  return { src: ex.dst, dst: last.source, hops: back.hops, outcome: back.outcome };
}

/**
 * Do the computed path and the kernel's trace of the probe agree (both ways for TCP)? Whatever
 * they say of the packet (delivered, dropped, held): a verdict is an answer, a disagreement is
 * not. Without a probe there is nothing to disagree with.
 */
export const explainAgrees = (ex: Explanation): boolean =>
  (ex.probe?.mismatches.length ?? 0) === 0 && (ex.reply?.probe?.mismatches.length ?? 0) === 0;
