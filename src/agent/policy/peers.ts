// Who a policy selects and who its peers are: pod queries and how a pod matches one.
// Semantics: NetworkPolicy (kubernetes.io/docs/concepts/services-networking/network-policies:
// a peer without namespaceSelector means the policy's own namespace; podSelector and
// namespaceSelector in one peer are ANDed); ClusterNetworkPolicy (network-policy-api
// v1alpha2: `namespaces` = every pod of the selected namespaces, `pods` = namespaceSelector
// (empty: all) AND podSelector; host-network and finished pods are never subjects or peers,
// and an address has one owner: src/cluster/pod-addresses.ts).
import { addressPods, compileSelector, type LabelMatcher } from "../../cluster/index.ts";
import type { ClusterState, LabelSelector, PodInfo } from "../../cluster/types.ts";

/** Pods by namespace selector (or one namespace by name) AND pod selector. */
export interface PodQuery {
  /** A namespace name, or a selector over namespaces' labels. */
  namespaces: string | LabelSelector;
  pods: LabelSelector;
}

export const queryKey = (q: PodQuery) => JSON.stringify([q.namespaces, q.pods]);

/** The policy pods by key, each with the addresses it owns (one owner per address: src/cluster/pod-addresses.ts). */
export const policyPodMap = (state: Pick<ClusterState, "pods">): Map<string, PodInfo> => addressPods(state.pods);
export const policyPods = (state: Pick<ClusterState, "pods">): PodInfo[] => [...policyPodMap(state).values()];

/**
 * A namespace's labels as selectors see them: its Namespace object's, plus the
 * `kubernetes.io/metadata.name` label the API server sets on every namespace (so namespaces
 * that only have pods, as in a manifests source, are selectable by name too).
 */
export function namespaceLabels(state: Pick<ClusterState, "namespaces">, ns: string): Record<string, string> {
  return { ...state.namespaces.get(ns)?.labels, "kubernetes.io/metadata.name": ns };
}

/** Matches pods against queries; selectors are compiled once per distinct selector. */
export class QueryMatcher {
  private readonly matchers = new Map<string, LabelMatcher>();
  private readonly nsLabels = new Map<string, Record<string, string>>();

  constructor(private readonly state: Pick<ClusterState, "namespaces">) {}

  private matcher(sel: LabelSelector): LabelMatcher {
    const k = JSON.stringify(sel);
    let m = this.matchers.get(k);
    if (!m) this.matchers.set(k, (m = compileSelector(sel)));
    return m;
  }

  namespaceMatches(q: PodQuery, ns: string): boolean {
    if (typeof q.namespaces === "string") return q.namespaces === ns;
    let labels = this.nsLabels.get(ns);
    if (!labels) this.nsLabels.set(ns, (labels = namespaceLabels(this.state, ns)));
    return this.matcher(q.namespaces)(labels);
  }

  matches(q: PodQuery, p: PodInfo): boolean {
    return this.namespaceMatches(q, p.namespace) && this.matcher(q.pods)(p.labels);
  }

  /** The pods of `byNamespace` a query selects: the namespaces first, then the pod selector. */
  select(q: PodQuery, byNamespace: ReadonlyMap<string, PodInfo[]>): PodInfo[] {
    const namespaces = typeof q.namespaces === "string" ? [q.namespaces] : [...byNamespace.keys()].filter((ns) => this.namespaceMatches(q, ns));
    const m = this.matcher(q.pods);
    return namespaces.flatMap((ns) => (byNamespace.get(ns) ?? []).filter((p) => m(p.labels)));
  }
}
