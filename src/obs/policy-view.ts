// Which policies select a pod, per direction, from the cluster state the agent reads (the
// lab's manifests directory, or the agent's --source). Selection is the evaluator's
// (src/cluster/evaluate-policy.ts, written from the API specification): a NetworkPolicy
// selects pods of its own namespace by podSelector, for its policyTypes; a
// ClusterNetworkPolicy selects by its subject, in both directions it has rules for.
import { openSource, PolicyEvaluator, type SelectingPolicy } from "../cluster/index.ts";
import type { ClusterState, SourceOptions } from "../cluster/types.ts";

export type { SelectingPolicy };

/** The policies selecting pod "namespace/name", Admin tier first, then NetworkPolicy, then Baseline. */
export function selectingPolicies(state: ClusterState, podKey: string): SelectingPolicy[] {
  const pod = state.pods.get(podKey);
  return pod ? new PolicyEvaluator(state).selecting(pod) : [];
}

/** The cluster state of a source spec ("dir:/path", "kubernetes", ...), read once (with Services when asked: opts.services). */
export async function readClusterState(spec: string, opts: SourceOptions = {}): Promise<ClusterState> {
  const src = openSource(spec, opts);
  try {
    await src.start();
    return src.snapshot().state;
  } finally {
    src.close();
  }
}
