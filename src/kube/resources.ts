// The resources mncni reads or writes, and how their URL paths are built. A resource is plain
// data, so a CRD (the policy issue's) is one more entry, not new code.

export interface Resource {
  /** Kind of one object ("Node"), for logs and metric labels. */
  kind: string;
  /** "" for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export const RESOURCES = {
  nodes: { kind: "Node", group: "", version: "v1", plural: "nodes", namespaced: false },
  pods: { kind: "Pod", group: "", version: "v1", plural: "pods", namespaced: true },
  namespaces: { kind: "Namespace", group: "", version: "v1", plural: "namespaces", namespaced: false },
  networkPolicies: { kind: "NetworkPolicy", group: "networking.k8s.io", version: "v1", plural: "networkpolicies", namespaced: true },
  // A CRD (policy.networking.k8s.io, the network-policy API's cluster-scoped policies): many
  // clusters do not have it, which the informer takes as a missing resource, not an error.
  clusterNetworkPolicies: { kind: "ClusterNetworkPolicy", group: "policy.networking.k8s.io", version: "v1alpha2", plural: "clusternetworkpolicies", namespaced: false },
  services: { kind: "Service", group: "", version: "v1", plural: "services", namespaced: true },
  endpointSlices: { kind: "EndpointSlice", group: "discovery.k8s.io", version: "v1", plural: "endpointslices", namespaced: true },
  leases: { kind: "Lease", group: "coordination.k8s.io", version: "v1", plural: "leases", namespaced: true },
  events: { kind: "Event", group: "", version: "v1", plural: "events", namespaced: true },
} as const satisfies Record<string, Resource>;

export interface PathOpts {
  /** Namespace of a namespaced resource; omitted: across all namespaces (list/watch only). */
  namespace?: string;
  name?: string;
  /** "status" for the status subresource. */
  subresource?: string;
}

export function resourcePath(r: Resource, o: PathOpts = {}): string {
  const root = r.group === "" ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  let p = root;
  if (r.namespaced && o.namespace !== undefined) p += `/namespaces/${encodeURIComponent(o.namespace)}`;
  p += `/${r.plural}`;
  if (o.name !== undefined) p += `/${encodeURIComponent(o.name)}`;
  if (o.subresource !== undefined) p += `/${o.subresource}`;
  return p;
}
