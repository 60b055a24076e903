// The Kubernetes objects mncni reads (only the fields it uses, plus metadata), and the typed
// view of cluster state the agent's reconcilers work on.
import type { Registry } from "prom-client";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  /** RFC 3339, set by the API server: which of two Nodes came first. */
  creationTimestamp?: string;
  /** Set when a delete waits for finalizers (a Pod: its grace period): the object is terminating. */
  deletionTimestamp?: string;
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
  status?: { addresses?: NodeAddress[]; conditions?: NodeCondition[] };
}

/** The protocols a Kubernetes port, NetworkPolicy port and ClusterNetworkPolicy rule name. */
export const PROTOCOLS = ["TCP", "UDP", "SCTP"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: Protocol;
}

export interface KubePod extends TypeMeta {
  kind: "Pod";
  metadata: ObjectMeta;
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    /** Only the ports: named ports in policies resolve through them. */
    containers?: { name?: string; ports?: ContainerPort[] }[];
    initContainers?: { name?: string; ports?: ContainerPort[] }[];
  };
  status?: { phase?: string; hostIP?: string; podIP?: string; podIPs?: { ip: string }[]; conditions?: { type: string; status: string }[] };
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
  /** Defaults to TCP. */
  protocol?: Protocol;
  /** A number, or the name of a container port of the selected pods; absent: every port. */
  port?: number | string;
  /** With a numeric port: the range port..endPort. */
  endPort?: number;
}

export interface NetworkPolicyIngressRule {
  /** Absent or empty: every source. */
  from?: NetworkPolicyPeer[];
  /** Absent or empty: every port. */
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export type PolicyType = "Ingress" | "Egress";

/** networking.k8s.io/v1 NetworkPolicy (https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/). */
export interface KubeNetworkPolicy extends TypeMeta {
  kind: "NetworkPolicy";
  metadata: ObjectMeta;
  spec: {
    /** Empty: every pod of the policy's namespace. */
    podSelector: LabelSelector;
    /** Absent: Ingress, plus Egress when egress rules are given. */
    policyTypes?: PolicyType[];
    ingress?: NetworkPolicyIngressRule[];
    egress?: NetworkPolicyEgressRule[];
  };
}

// ClusterNetworkPolicy, policy.networking.k8s.io/v1alpha2, from the Network Policy API project
// (github.com/kubernetes-sigs/network-policy-api, apis/v1alpha2/clusternetworkpolicy_types.go).

export type CNPTier = "Admin" | "Baseline";
export type CNPAction = "Accept" | "Deny" | "Pass";

/** The direction of a policy rule, from the selected pod's point of view. */
export type Direction = "ingress" | "egress";

/** The two kinds of policy mncni enforces. */
export type PolicyKind = "NetworkPolicy" | "ClusterNetworkPolicy";

/**
 * The policy and rule that decided a flow in one direction: what the evaluator returns, the
 * compiler keeps for each logging rule (the verdict log names it) and explain and the lab's
 * checks print (policyName() for the name).
 */
export interface Decider {
  kind: PolicyKind;
  /** A NetworkPolicy's namespace (name is then its name within it). */
  namespace?: string;
  name: string;
  /**
   * ClusterNetworkPolicy: the rule's name, else "ingress[i]"/"egress[i]"; NetworkPolicy: the
   * allowing rule as "ingress[i]"/"egress[i]", or "default-deny" when it isolates and no rule allows.
   */
  rule: string;
  /** A ClusterNetworkPolicy's tier (absent: a NetworkPolicy). */
  tier?: CNPTier;
  /** The ClusterNetworkPolicy rule's action, where the evaluator decided by it. */
  action?: CNPAction;
  direction: Direction;
}

/** Pods in the namespaces namespaceSelector selects (empty: all) that podSelector selects. */
export interface CNPNamespacedPod {
  namespaceSelector?: LabelSelector;
  podSelector: LabelSelector;
}

/** Exactly one field. Host-network pods are never subjects. */
export interface CNPSubject {
  namespaces?: LabelSelector;
  pods?: CNPNamespacedPod;
}

/** Exactly one field. */
export interface CNPIngressPeer {
  namespaces?: LabelSelector;
  pods?: CNPNamespacedPod;
}

/** Exactly one field. */
export interface CNPEgressPeer {
  namespaces?: LabelSelector;
  pods?: CNPNamespacedPod;
  /** Nodes by label: their status.addresses IPs (experimental channel). */
  nodes?: LabelSelector;
  /** CIDRs, IPv4 or IPv6 (cluster-internal traffic matches them too). */
  networks?: string[];
  /** Experimental, Accept rules only; mncni reads it but does not enforce it (validation says so). */
  domainNames?: string[];
}

/** Exactly one of number and range. */
export interface CNPPort {
  number?: number;
  range?: { start: number; end: number };
}

/** Exactly one field. */
export interface CNPProtocol {
  tcp?: { destinationPort?: CNPPort };
  udp?: { destinationPort?: CNPPort };
  sctp?: { destinationPort?: CNPPort };
  destinationNamedPort?: string;
}

export interface CNPIngressRule {
  name?: string;
  action: CNPAction;
  from: CNPIngressPeer[];
  /** Absent: every protocol and port. */
  protocols?: CNPProtocol[];
}

export interface CNPEgressRule {
  name?: string;
  action: CNPAction;
  to: CNPEgressPeer[];
  protocols?: CNPProtocol[];
}

export interface KubeClusterNetworkPolicy extends TypeMeta {
  kind: "ClusterNetworkPolicy";
  metadata: ObjectMeta;
  spec: {
    tier: CNPTier;
    /** 0..1000, lower first. */
    priority: number;
    subject: CNPSubject;
    /** In order: the first matching rule decides (at most 25). */
    ingress?: CNPIngressRule[];
    egress?: CNPEgressRule[];
  };
}

// Services (core/v1) and EndpointSlices (discovery.k8s.io/v1): what the Service proxy reads.

export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
export type TrafficPolicy = "Cluster" | "Local";

export interface ServicePort {
  /** Required when the Service has more than one port; EndpointSlice ports carry the same name. */
  name?: string;
  /** Defaults to TCP. */
  protocol?: Protocol;
  port: number;
  /** A number, or the name of a container port (resolved per endpoint through the EndpointSlice); absent: port. */
  targetPort?: number | string;
  /** NodePort and LoadBalancer Services. */
  nodePort?: number;
}

/** core/v1 Service (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/). */
export interface KubeService extends TypeMeta {
  kind: "Service";
  metadata: ObjectMeta;
  spec?: {
    type?: ServiceType;
    selector?: Record<string, string>;
    /** "None": headless (no proxying). */
    clusterIP?: string;
    /** Dual-stack: one per family, the primary first. */
    clusterIPs?: string[];
    ipFamilies?: ("IPv4" | "IPv6")[];
    ipFamilyPolicy?: "SingleStack" | "PreferDualStack" | "RequireDualStack";
    ports?: ServicePort[];
    externalIPs?: string[];
    sessionAffinity?: "None" | "ClientIP";
    sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    externalTrafficPolicy?: TrafficPolicy;
    internalTrafficPolicy?: TrafficPolicy;
    /** With externalTrafficPolicy Local on a LoadBalancer: the port answering how many local endpoints there are. */
    healthCheckNodePort?: number;
    loadBalancerSourceRanges?: string[];
    externalName?: string;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string; ipMode?: "VIP" | "Proxy" }[] } };
}

/** The label naming an EndpointSlice's Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface EndpointConditions {
  /** Absent: true (the API's "unknown" reads as ready). */
  ready?: boolean;
  /** Absent: same as ready. */
  serving?: boolean;
  /** Absent: false. */
  terminating?: boolean;
}

export interface Endpoint {
  addresses: string[];
  conditions?: EndpointConditions;
  nodeName?: string;
  zone?: string;
  hostname?: string;
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
}

export interface EndpointPort {
  /** Matches the Service port's name ("" or absent for an unnamed port). */
  name?: string;
  protocol?: Protocol;
  /** Absent: every port (which a proxy cannot use). */
  port?: number;
  appProtocol?: string;
}

/** discovery.k8s.io/v1 EndpointSlice (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/endpoint-slice-v1/). */
export interface KubeEndpointSlice extends TypeMeta {
  kind: "EndpointSlice";
  metadata: ObjectMeta;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints?: Endpoint[];
  ports?: EndpointPort[];
}

export type KubeObject = KubeNode | KubePod | KubeNamespace | KubeNetworkPolicy | KubeClusterNetworkPolicy | KubeService | KubeEndpointSlice;
export const KINDS = ["Node", "Pod", "Namespace", "NetworkPolicy", "ClusterNetworkPolicy", "Service", "EndpointSlice"] as const;

/** A Node as the reconcilers see it: addresses and pod CIDRs parsed and normalised. */
export interface NodeInfo {
  name: string;
  /** InternalIP addresses, in manifest order (at most one per family is used for routing). */
  internalIPs: string[];
  /** spec.podCIDRs (or the legacy spec.podCIDR), normalised to their network address. */
  podCIDRs: string[];
  /** metadata.creationTimestamp, when the source has one. */
  created?: string;
  /** The pod MTU the node's agent published (its Node's MncniPodMTU status condition), when it has. */
  podMTU?: number;
  /** What the node's routing backend published for its peers (status condition MncniRouting), when it has. */
  routing?: Record<string, string>;
  /** Why some field was ignored (a bad CIDR or address), for logs; empty when all is well. */
  problems: string[];
}

/** A container port with a name, which policies may refer to instead of the number. */
export interface NamedPort {
  name: string;
  port: number;
  protocol: Protocol;
}

export interface PodInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  nodeName?: string;
  podIPs: string[];
  hostNetwork: boolean;
  /** The named container ports of all containers (init containers included), in manifest order. */
  namedPorts: NamedPort[];
  /** status.phase: a finished pod (Succeeded, Failed) keeps its podIPs in the API, but not its address. */
  phase?: string;
  /** metadata.creationTimestamp (RFC 3339): of two pods showing one address, the newer got it last. */
  created?: string;
}

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/** A Service port as the proxy reads it (protocol and target filled in). */
export interface ServicePortInfo {
  /** "" for an unnamed port. */
  name: string;
  protocol: Protocol;
  port: number;
  /** A number, or a port name that each endpoint's EndpointSlice resolves. */
  targetPort: number | string;
  nodePort?: number;
}

/** A Service, parsed and normalised (addresses in canonical form). */
export interface ServiceInfo {
  namespace: string;
  name: string;
  type: ServiceType;
  /** spec.clusterIPs (or clusterIP), normalised; empty for a headless Service or an ExternalName. */
  clusterIPs: string[];
  /** clusterIP "None": DNS only, never proxied. */
  headless: boolean;
  ports: ServicePortInfo[];
  externalIPs: string[];
  /** status.loadBalancer.ingress IPs (not hostnames; ipMode Proxy ones are not for the node to answer). */
  loadBalancerIPs: string[];
  /** sessionAffinity ClientIP: the timeout (default 10800 s); absent: no affinity. */
  affinitySeconds?: number;
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  healthCheckNodePort?: number;
  selector?: Record<string, string>;
  /** Why some field was ignored (a bad address or port), for logs; empty when all is well. */
  problems: string[];
}

/** One endpoint of an EndpointSlice, its conditions filled in as the API defines their absence. */
export interface EndpointInfo {
  addresses: string[];
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
  zone?: string;
  /** targetRef of kind Pod: "namespace/name". */
  pod?: string;
}

export interface EndpointSliceInfo {
  namespace: string;
  name: string;
  /** The kubernetes.io/service-name label ("" when absent: no Service's). */
  service: string;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints: EndpointInfo[];
  ports: { name: string; protocol: Protocol; port?: number }[];
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
  /** Valid ones only (an invalid policy is listed in `invalid`), keyed "namespace/name". */
  networkPolicies: ReadonlyMap<string, KubeNetworkPolicy>;
  /** Valid ones only, keyed by name (cluster-scoped). */
  clusterNetworkPolicies: ReadonlyMap<string, KubeClusterNetworkPolicy>;
  /** Keyed "namespace/name". */
  services: ReadonlyMap<string, ServiceInfo>;
  /** Keyed "namespace/name" (the slice's own name; its Service is `service`). */
  endpointSlices: ReadonlyMap<string, EndpointSliceInfo>;
  invalid: readonly InvalidManifest[];
  /**
   * Kinds the source has never been able to read, each with why (a CRD not served, 404): their
   * objects are unknown, not absent, so what depends on them keeps what the kernel has.
   * Absent when every kind was read.
   */
  unknown?: readonly { kind: (typeof KINDS)[number]; why: string }[];
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
/**
 * The Node status condition where each agent publishes its pod MTU (the number is its message),
 * for the others to compare: on the status, because the agent may patch only nodes/status
 * (RBAC cannot limit a token to its own Node, and a patch of Nodes would let one node taint,
 * cordon or relabel every other).
 */
export const POD_MTU_CONDITION = "MncniPodMTU";

/** A Node status condition (the fields mncni reads and writes). */
export interface NodeCondition {
  type: string;
  status: "True" | "False" | "Unknown" | string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
}

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
  /** Told this node's pod MTU after each pass that wrote the conflist, for a source that publishes it (POD_MTU_CONDITION). */
  publishPodMTU?(mtu: number): void;
  /** Told after each routes step what this node's routing backend publishes for its peers (MncniRouting), for a source that publishes it. */
  publishRouting?(data: Readonly<Record<string, string>>): void;
  /**
   * Told after each pass the peers whose published pod MTU differs from this node's, one
   * sentence each (empty when they agree), for a source that reports it on the Node (an Event).
   */
  reportPodMTUMismatch?(mismatches: readonly string[]): void;
  /** What the policy step left out because the kernel refused it (an Event on the Node when the list changes). */
  reportPolicyRejected?(rejected: readonly string[]): void;
  /** The source's own metrics (prom-client), merged into the agent's /metrics. */
  readonly metricsRegistry?: Registry;
}

export interface SourceOptions {
  /** How often a source without reliable events re-lists everything, in seconds. */
  resyncSeconds?: number;
  /** This node's name (the Kubernetes source patches its Node's status). */
  nodeName?: string;
  /**
   * Read Services and EndpointSlices (the Service proxy): the Kubernetes source lists and
   * watches them only then, so an agent without the proxy needs no RBAC for them.
   */
  services?: boolean;
}
