// Which policies select a pod, per direction, from the cluster state the agent reads (the
// lab's manifests directory, or the agent's --source). Selection follows the API as the
// evaluator (src/cluster/evaluate-policy.ts) does: a NetworkPolicy selects pods of its own
// namespace by podSelector, for its policyTypes (Ingress always when unset, Egress when it
// has egress rules); a ClusterNetworkPolicy selects by its subject, in both directions it has
// rules for. Host-network pods are selected by nothing.
import { compileSelector, openSource } from "../cluster/index.ts";
import type { ClusterState, KubeClusterNetworkPolicy, KubeNetworkPolicy, LabelSelector, PodInfo } from "../cluster/types.ts";

export interface SelectingPolicy {
  direction: "ingress" | "egress";
  kind: "NetworkPolicy" | "ClusterNetworkPolicy";
  /** NetworkPolicy: "namespace/name"; ClusterNetworkPolicy: its name. */
  name: string;
  tier: "Admin" | "Baseline" | "NetworkPolicy";
  priority?: number;
}

const matches = (sel: LabelSelector | undefined, labels: Record<string, string>) => sel !== undefined && compileSelector(sel)(labels);

function npTypes(p: KubeNetworkPolicy): ("ingress" | "egress")[] {
  if (p.spec.policyTypes?.length) return p.spec.policyTypes.map((t) => (t === "Ingress" ? "ingress" : "egress"));
  return p.spec.egress?.length ? ["ingress", "egress"] : ["ingress"];
}

function cnpSelects(state: ClusterState, p: KubeClusterNetworkPolicy, pod: PodInfo): boolean {
  // A namespace without an object still carries its automatic name label (Kubernetes sets it).
  const nsLabels = { ...state.namespaces.get(pod.namespace)?.labels, "kubernetes.io/metadata.name": pod.namespace };
  const s = p.spec.subject;
  if (s.namespaces) return matches(s.namespaces, nsLabels);
  if (s.pods) return matches(s.pods.namespaceSelector ?? {}, nsLabels) && matches(s.pods.podSelector ?? {}, pod.labels);
  return false;
}

/** The policies selecting pod "namespace/name", Admin tier first, then NetworkPolicy, then Baseline. */
export function selectingPolicies(state: ClusterState, podKey: string): SelectingPolicy[] {
  const pod = state.pods.get(podKey);
  if (!pod || pod.hostNetwork) return [];
  const out: SelectingPolicy[] = [];
  const cnps = [...state.clusterNetworkPolicies.values()].sort((a, b) => a.spec.priority - b.spec.priority || a.metadata.name.localeCompare(b.metadata.name));
  const cnp = (tier: "Admin" | "Baseline") => {
    for (const p of cnps) {
      if (p.spec.tier !== tier || !cnpSelects(state, p, pod)) continue;
      for (const direction of ["ingress", "egress"] as const) {
        if (p.spec[direction]?.length) out.push({ direction, kind: "ClusterNetworkPolicy", name: p.metadata.name, tier, priority: p.spec.priority });
      }
    }
  };
  cnp("Admin");
  for (const p of state.networkPolicies.values()) {
    if (p.metadata.namespace !== pod.namespace || !matches(p.spec.podSelector ?? {}, pod.labels)) continue;
    for (const direction of npTypes(p)) out.push({ direction, kind: "NetworkPolicy", name: `${p.metadata.namespace}/${p.metadata.name}`, tier: "NetworkPolicy" });
  }
  cnp("Baseline");
  return out;
}

/** One line per selecting policy, as inspect prints it. */
export const formatSelecting = (p: SelectingPolicy) =>
  `${p.direction} ${p.kind} ${p.name} (${p.tier}${p.priority !== undefined ? ` priority ${p.priority}` : ""})`;

/** The cluster state of a source spec ("dir:/path", "kubernetes", ...), read once. */
export async function readClusterState(spec: string): Promise<ClusterState> {
  const src = openSource(spec);
  try {
    await src.start();
    return src.snapshot().state;
  } finally {
    src.close();
  }
}
