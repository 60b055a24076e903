// The policies of a cluster state as the page lists them: kind, tier, priority, the pods each
// selects (the evaluator's own selection, src/cluster/evaluate-policy.ts) and its rule counts.
import { PolicyEvaluator } from "../cluster/index.ts";
import type { ClusterState, Direction } from "../cluster/types.ts";
import type { UiPolicy } from "./model.ts";

const TIER_ORDER = { Admin: 0, NetworkPolicy: 1, Baseline: 2 } as const;

export function uiPolicies(state: ClusterState): UiPolicy[] {
  const ev = new PolicyEvaluator(state);
  const out = new Map<string, UiPolicy>();
  for (const np of state.networkPolicies.values()) {
    const ns = np.metadata.namespace ?? "default";
    out.set(`NetworkPolicy|${ns}/${np.metadata.name}`, {
      kind: "NetworkPolicy", namespace: ns, name: np.metadata.name, tier: "NetworkPolicy",
      directions: [], selects: [], rules: { ingress: np.spec.ingress?.length ?? 0, egress: np.spec.egress?.length ?? 0 },
    });
  }
  for (const cnp of state.clusterNetworkPolicies.values()) {
    out.set(`ClusterNetworkPolicy|${cnp.metadata.name}`, {
      kind: "ClusterNetworkPolicy", name: cnp.metadata.name, tier: cnp.spec.tier, priority: cnp.spec.priority,
      directions: [], selects: [], rules: { ingress: cnp.spec.ingress?.length ?? 0, egress: cnp.spec.egress?.length ?? 0 },
    });
  }
  for (const pod of state.pods.values()) {
    if (pod.hostNetwork) continue;
    for (const s of ev.selecting(pod)) {
      const p = out.get(`${s.kind}|${s.name}`);
      if (!p) continue;
      const podKey = `${pod.namespace}/${pod.name}`;
      if (!p.selects.includes(podKey)) p.selects.push(podKey);
      if (!p.directions.includes(s.direction as Direction)) p.directions.push(s.direction);
    }
  }
  return [...out.values()].sort((a, b) => TIER_ORDER[a.tier] - TIER_ORDER[b.tier] || (a.priority ?? 0) - (b.priority ?? 0) || `${a.namespace ?? ""}/${a.name}`.localeCompare(`${b.namespace ?? ""}/${b.name}`));
}
