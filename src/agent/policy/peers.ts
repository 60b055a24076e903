// Who a policy selects and who its peers are, from the cluster state: pod sets keyed by the
// selector pair that defines them, so two policies with the same peer share one nft set.
// Semantics: NetworkPolicy (kubernetes.io/docs/concepts/services-networking/network-policies:
// a peer without namespaceSelector means the policy's own namespace; podSelector and
// namespaceSelector in one peer are ANDed); ClusterNetworkPolicy (network-policy-api
// v1alpha2: `namespaces` = every pod of the selected namespaces, `pods` = namespaceSelector
// (empty: all) AND podSelector; host-network pods are never subjects or peers).
import { compileSelector, type LabelMatcher } from "../../cluster/index.ts";
import type { ClusterState, LabelSelector, PodInfo } from "../../cluster/types.ts";

/** Pods by namespace selector (or one namespace by name) AND pod selector. */
export interface PodQuery {
  /** A namespace name, or a selector over namespaces' labels. */
  namespaces: string | LabelSelector;
  pods: LabelSelector;
}

const queryKey = (q: PodQuery) => JSON.stringify([q.namespaces, q.pods]);

/** Pods that take part in policy: not host-network, with at least one address. */
export const policyPods = (state: ClusterState): PodInfo[] => [...state.pods.values()].filter((p) => !p.hostNetwork && p.podIPs.length > 0);

export class PodIndex {
  private readonly byNamespace = new Map<string, PodInfo[]>();
  private readonly cache = new Map<string, PodInfo[]>();
  private readonly matchers = new Map<string, LabelMatcher>();

  constructor(private readonly state: ClusterState) {
    for (const p of policyPods(state)) {
      const list = this.byNamespace.get(p.namespace) ?? [];
      list.push(p);
      this.byNamespace.set(p.namespace, list);
    }
  }

  private matcher(sel: LabelSelector): LabelMatcher {
    const k = JSON.stringify(sel);
    let m = this.matchers.get(k);
    if (!m) this.matchers.set(k, (m = compileSelector(sel)));
    return m;
  }

  /** The pods a query selects, in a stable order (namespace/name). Cached per query. */
  select(q: PodQuery): PodInfo[] {
    const k = queryKey(q);
    const hit = this.cache.get(k);
    if (hit) return hit;
    const namespaces = typeof q.namespaces === "string" ? [q.namespaces] : this.namespacesMatching(q.namespaces);
    const podMatch = this.matcher(q.pods);
    const out = namespaces.flatMap((ns) => (this.byNamespace.get(ns) ?? []).filter((p) => podMatch(p.labels)));
    out.sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
    this.cache.set(k, out);
    return out;
  }

  /**
   * Namespaces a selector covers: those with a Namespace object whose labels match, plus, for
   * namespaces that only have pods (no Namespace object in a manifests source), the implied
   * `kubernetes.io/metadata.name` label the API server sets on every namespace.
   */
  private namespacesMatching(sel: LabelSelector): string[] {
    const m = this.matcher(sel);
    const names = new Set([...this.state.namespaces.keys(), ...this.byNamespace.keys()]);
    return [...names].sort().filter((n) => m({ ...this.state.namespaces.get(n)?.labels, "kubernetes.io/metadata.name": n }));
  }
}

export { queryKey };
