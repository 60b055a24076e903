// The policy side of `explain`: the verdict the policy evaluator (written from the API spec,
// src/cluster/evaluate-policy.ts) expects for the packet, placed on the node that enforces it
// (egress on the source pod's node, ingress on the destination pod's), and the verdict the
// traced probe met in table `inet mncni-policy`, named from the rule's comment, which the
// compiler (src/agent/policy/compile.ts) writes as "np NS/NAME DIR[i]", "np NS DIR isolated:
// no rule allows (NAME)" or "cnp TIER NAME DIR[i] [RULE]"; an allowing rule's verdict is accept
// (ingress) or goto ingress (egress). A disagreement between the two is a mismatch.
import { PolicyEvaluator, policyName, type Decider, type Verdict } from "../cluster/index.ts";
import type { ClusterState, Protocol } from "../cluster/types.ts";
import type { Place, PolicyExpectation, TracedPlace, TracedPolicy } from "./explain.ts";
import type { ProbeProto } from "./probe.ts";

export const POLICY_TABLE_TRACED = "inet mncni-policy";

export const formatDecider = (d: Decider) =>
  `${d.kind} ${policyName(d)} rule ${d.rule}${d.tier ? ` (tier ${d.tier}${d.action ? `, ${d.action}` : ""})` : ""}`;

/** What the evaluator expects; undefined for ICMP (the API's rules name TCP, UDP and SCTP; a port-less rule would decide, which the evaluator does not model). */
export function expectPolicy(state: ClusterState, src: string, dst: string, proto: ProbeProto, port: number): PolicyExpectation | undefined {
  if (proto === "icmp" || !src) return undefined;
  const v: Verdict = new PolicyEvaluator(state).evaluate({ src: { ip: src }, dst: { ip: dst }, port, protocol: proto.toUpperCase() as Protocol });
  const podAt = (ip: string) => [...state.pods.values()].find((p) => !p.hostNetwork && p.podIPs.includes(ip));
  const sp = podAt(src);
  const dp = podAt(dst);
  return {
    allowed: v.allowed,
    ...(v.deniedIn ? { deniedIn: v.deniedIn } : {}),
    ...(v.by ? { by: formatDecider(v.by), decider: v.by } : {}),
    ...(v.egress.by ? { egressBy: formatDecider(v.egress.by) } : {}),
    ...(v.ingress.by ? { ingressBy: formatDecider(v.ingress.by) } : {}),
    ...(sp?.nodeName ? { egressNode: sp.nodeName } : {}),
    ...(dp?.nodeName ? { ingressNode: dp.nodeName } : {}),
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

/** Names a compiler comment as a policy. */
export function ruleToPolicy(tag: string): string {
  let m = /^np (\S+)\/(\S+) (ingress|egress)\[(\d+)\]/.exec(tag);
  if (m) return `NetworkPolicy ${m[1]}/${m[2]} rule ${m[3]}[${m[4]}]`;
  m = /^np (\S+) (ingress|egress) isolated: no rule allows \((\S+)\)/.exec(tag);
  if (m) return `NetworkPolicy ${m[1]}/${m[3]} rule default-deny (${m[2]}: isolated, no rule allows)`;
  m = /^np (\S+) (ingress|egress) isolated/.exec(tag);
  if (m) return `NetworkPolicy in namespace ${m[1]} rule default-deny (${m[2]}: isolated, no rule allows)`;
  m = /^cnp (Admin|Baseline) (\S+) (ingress|egress)\[(\d+)\](?: (\S+))?/.exec(tag);
  if (m) return `ClusterNetworkPolicy ${m[2]} rule ${m[5] ?? `${m[3]}[${m[4]}]`} (tier ${m[1]})`;
  return tag;
}

/** The first decision the probe met in a policy table: a drop, or a rule that let it through. */
export function tracedPolicy(places: TracedPlace[]): TracedPolicy | undefined {
  for (const t of places) {
    for (const e of t.events) {
      if (e.table !== POLICY_TABLE_TRACED || !e.rule) continue;
      const c = /comment "([^"]*)"/.exec(e.rule)?.[1];
      // A policy rule allows with `accept` (ingress) or `goto ingress` (egress, which goes on
      // to the destination's checks); its other goto is an Admin tier Pass, which decides nothing.
      const allows = e.verdict === "accept" || (e.verdict === "goto" && / goto ingress /.test(`${e.rule} `));
      if (!c || (e.verdict !== "drop" && !allows)) continue;
      return { place: t.place, verdict: e.verdict === "drop" ? "dropped" : "allowed", rule: c, by: ruleToPolicy(c) };
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
  if (!e.allowed && t?.verdict === "dropped" && e.decider) {
    const d = e.decider;
    // The default-deny rule names the namespace only; any other names the policy.
    const named = d.rule === "default-deny" ? t.rule.startsWith(`np ${d.namespace} `) : t.rule.includes(` ${policyName(d)} `) || t.rule.includes(` ${policyName(d)}`);
    if (!named) out.push(`the policy evaluator names ${e.by}; the traced drop names ${t.by}`);
  }
  return out;
}
