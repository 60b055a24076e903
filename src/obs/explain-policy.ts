// The policy side of `explain`: the verdict the policy evaluator (written from the API spec,
// src/cluster/evaluate-policy.ts) expects for the packet, placed on the node that enforces it
// (egress on the source pod's node, ingress on the destination pod's), and the verdict the
// traced probe met in table `inet mncni-policy`, named by the compiler's record of each
// deciding rule's comment (PolicyStructure.decisions: the policy, rule and verdict; compiled
// from the same cluster state), not by parsing the comment. A disagreement between the two is
// a mismatch.
import { describeDecider, ISOLATED, PolicyEvaluator, policyName, type ExplainedVerdict } from "../cluster/index.ts";
import type { ClusterState, Protocol } from "../cluster/types.ts";
import type { Place, PolicyExpectation, TracedPlace, TracedPolicy } from "./explain.ts";
import type { ProbeProto } from "./probe.ts";
import { compilePolicy, type RuleDecision } from "../agent/policy/index.ts";
import { POLICY, tableRef } from "../firewall/names.ts";

const POLICY_TABLE_TRACED = tableRef(POLICY);

/** The deciding rules of the policy table the agents program from this state, by comment. */
export function policyDecisions(state: ClusterState): ReadonlyMap<string, RuleDecision> {
  return compilePolicy({ state }).decisions;
}


/** What the evaluator expects; undefined for ICMP (the API's rules name TCP, UDP and SCTP; a port-less rule would decide, which the evaluator does not model). */
export function expectPolicy(state: ClusterState, src: string, dst: string, proto: ProbeProto, port: number): PolicyExpectation | undefined {
  if (proto === "icmp" || !src) return undefined;
  const v: ExplainedVerdict = new PolicyEvaluator(state).explain({ src: { ip: src }, dst: { ip: dst }, port, protocol: proto.toUpperCase() as Protocol });
  const podAt = (ip: string) => [...state.pods.values()].find((p) => !p.hostNetwork && p.podIPs.includes(ip));
  const sp = podAt(src);
  const dp = podAt(dst);
  return {
    allowed: v.allowed,
    ...(v.deniedIn ? { deniedIn: v.deniedIn } : {}),
    ...(v.by ? { by: describeDecider(v.by), decider: v.by } : {}),
    ...(v.egress.by ? { egressBy: describeDecider(v.egress.by) } : {}),
    ...(v.ingress.by ? { ingressBy: describeDecider(v.ingress.by) } : {}),
    ...(sp?.nodeName ? { egressNode: sp.nodeName } : {}),
    ...(dp?.nodeName ? { ingressNode: dp.nodeName } : {}),
    why: { egress: v.egress, ingress: v.ingress },
  };
}

/** For computePath: the expected verdict at the node that enforces it, once per direction. */
export function policyAt(e: PolicyExpectation): (place: Place) => { drop: boolean; policy: string } | undefined {
  const done = new Set<string>();
  return (place) => {
    if (place.kind !== "node") return undefined;
    for (const dir of ["egress", "ingress"] as const) {
      if ((dir === "egress" ? e.egressNode : e.ingressNode) !== place.name || done.has(dir)) continue;
      done.add(dir);
      const by = dir === "egress" ? e.egressBy : e.ingressBy;
      if (e.deniedIn === dir) return { drop: true, policy: `${dir} denied by ${by ?? "?"}` };
      if (by) return { drop: false, policy: `${dir} allowed by ${by}` };
    }
    return undefined;
  };
}

/** The first decision the probe met in a policy table: a drop, or a rule that let it through. */
export function tracedPolicy(places: TracedPlace[], decisions: ReadonlyMap<string, RuleDecision>): TracedPolicy | undefined {
  for (const t of places) {
    for (const e of t.events) {
      const c = e.comment;
      if (e.table !== POLICY_TABLE_TRACED || c === undefined) continue;
      const d = decisions.get(c);
      if (!d) {
        // No record of it (the cluster state is not known here): a drop or an accept still decided.
        if (decisions.size === 0 && (e.verdict === "drop" || e.verdict === "accept")) return { place: t.place, verdict: e.verdict === "drop" ? "dropped" : "allowed", rule: c, by: `the rule with comment "${c}"` };
        continue;
      }
      // A pass (an Admin tier Pass) decides nothing.
      if (d.verdict === "pass") continue;
      if (d.verdict === "deny" ? e.verdict !== "drop" : e.verdict !== "accept" && e.verdict !== "goto") continue;
      return { place: t.place, verdict: d.verdict === "deny" ? "dropped" : "allowed", rule: c, by: describeDecider(d.decider), decider: d.decider };
    }
  }
  return undefined;
}

/**
 * Where the evaluator and the kernel's account disagree. A packet the hold dropped (its pod
 * not yet programmed) never reached a policy chain: nothing to compare.
 */
export function policyMismatches(e: PolicyExpectation | undefined, t: TracedPolicy | undefined, dropped: boolean, held = false): string[] {
  if (!e || held) return [];
  const out: string[] = [];
  if (!e.allowed && !t) out.push(`the policy evaluator denies it (${e.deniedIn}: ${e.by}); the traced packet met no policy drop`);
  if (!e.allowed && t?.verdict === "allowed" && !dropped) out.push(`the policy evaluator denies it (${e.by}); the traced packet was allowed by ${t.by}`);
  if (e.allowed && t?.verdict === "dropped") out.push(`the policy evaluator allows it; the traced packet was dropped by ${t.by} in "${t.place}"`);
  if (!e.allowed && t?.verdict === "dropped" && e.decider && t.decider) {
    const d = e.decider;
    const k = t.decider;
    // Isolation is the namespace's (the kernel's names the first isolating policy); any other decider is the policy's.
    const named = d.rule === ISOLATED ? k.rule === ISOLATED && k.namespace === d.namespace : k.kind === d.kind && policyName(k) === policyName(d);
    if (!named) out.push(`the policy evaluator names ${e.by}; the traced drop names ${t.by}`);
  }
  return out;
}
