// The Kubernetes objects mncni reads (only the fields it uses, plus metadata), and the typed
// view of cluster state the agent's reconcilers work on.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  /** RFC 3339, set by the API server: which of two Nodes came first. */
  creationTimestamp?: string;
}

export interface TypeMeta {
  apiVersion?: string;
  kind: string;
}

export interface NodeAddress {
  type: "InternalIP" | "ExternalIP" | "Hostname" | "InternalDNS" | "ExternalDNS" | string;
  address: string;
}

export interface KubeNode extends TypeMeta {
  kind: "Node";
  metadata: ObjectMeta;
  spec?: { podCIDR?: string; podCIDRs?: string[]; unschedulable?: boolean };
  status?: { addresses?: NodeAddress[] };
}

export interface KubePod extends TypeMeta {
  kind: "Pod";
  metadata: ObjectMeta;
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string; hostIP?: string; podIP?: string; podIPs?: { ip: string }[] };
}

export interface KubeNamespace extends TypeMeta {
  kind: "Namespace";
  metadata: ObjectMeta;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface NetworkPolicyPort {
  protocol?: "TCP" | "UDP" | "SCTP";
  port?: number | string;
  endPort?: number;
}

export interface KubeNetworkPolicy extends TypeMeta {
  kind: "NetworkPolicy";
  metadata: ObjectMeta;
  spec: {
    podSelector: LabelSelector;
    policyTypes?: ("Ingress" | "Egress")[];
    ingress?: { from?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
    egress?: { to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
  };
}

export type KubeObject = KubeNode | KubePod | KubeNamespace | KubeNetworkPolicy;
export const KINDS = ["Node", "Pod", "Namespace", "NetworkPolicy"] as const;
export type Kind = (typeof KINDS)[number];

/** A Node as the reconcilers see it: addresses and pod CIDRs parsed and normalised. */
export interface NodeInfo {
  name: string;
  /** InternalIP addresses, in manifest order (at most one per family is used for routing). */
  internalIPs: string[];
  /** spec.podCIDRs (or the legacy spec.podCIDR), normalised to their network address. */
  podCIDRs: string[];
  /** metadata.creationTimestamp, when the source has one. */
  created?: string;
  /** Why some field was ignored (a bad CIDR or address), for logs; empty when all is well. */
  problems: string[];
}

export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  nodeName?: string;
  podIPs: string[];
  hostNetwork: boolean;
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/** A manifest (or one document of it) that was skipped, and why. */
export interface InvalidManifest {
  file: string;
  error: string;
}

/** An immutable snapshot of cluster state. Maps are keyed by name ("namespace/name" for namespaced kinds). */
export interface ClusterState {
  nodes: ReadonlyMap<string, NodeInfo>;
  pods: ReadonlyMap<string, PodInfo>;
  namespaces: ReadonlyMap<string, NamespaceInfo>;
  networkPolicies: ReadonlyMap<string, KubeNetworkPolicy>;
  invalid: readonly InvalidManifest[];
}

/** What a source has cached: the state, and whether it can vouch for it now. */
export interface SourceSnapshot {
  state: ClusterState;
  /**
   * Why the source cannot confirm this state now (directory unreadable, API unreachable): the
   * state is then the last good one, never an empty cluster. Undefined when it is current.
   */
  stale?: string;
}

/**
 * Where cluster state comes from: a manifests directory, or (later) the Kubernetes API. The
 * contract is an informer's: the source keeps a cache (filled by start(), kept current by its
 * own events and re-lists once watching) and hands out snapshots of it; asking never reads.
 */
export interface ClusterSource {
  /** A human-readable description for logs, e.g. `dir:/etc/mncni/manifests`. */
  readonly description: string;
  /**
   * Fills the cache for the first time. Rejects when the source cannot be used at all (a
   * mistyped directory, no API access): the agent then refuses to start, having changed nothing.
   */
  start(): Promise<void>;
  /** The cached state (start() first). Cheap: the agent asks on every pass. */
  snapshot(): SourceSnapshot;
  /** Keeps the cache current from now on; onChange runs (coalesced) after it changed. */
  watch(onChange: () => void): void;
  close(): void;
  /**
   * Told after every pass whether this node's data plane (routes, conflist) is in place, for a
   * source that reports it back (the Kubernetes source: the Node's NetworkUnavailable condition).
   */
  dataPlaneReady?(ready: boolean): void;
  /** The source's own metrics in the Prometheus text format, appended to the agent's /metrics. */
  renderMetrics?(): string;
}

export interface SourceOptions {
  /** How often a source without reliable events re-lists everything, in seconds. */
  resyncSeconds?: number;
  /** This node's name (the Kubernetes source patches its Node's status). */
  nodeName?: string;
}
