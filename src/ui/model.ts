// What the page and its server say to each other (JSON over /api/* and the /api/events
// stream): the topology, the policies, the flow rows and explain's request. Shared by the
// server (src/ui/*.ts) and the page (src/ui/page/), which imports types only.
import type { Decider, Direction, LabelSelector } from "../cluster/types.ts";
import type { ExplainedDirection, PeerMiss, RuleCheck } from "../cluster/evaluate-policy.ts";
import type { Explanation } from "../obs/explain.ts";
import type { FlowEnd } from "../obs/flows.ts";

export type { Explanation, Decider, Direction, FlowEnd, ExplainedDirection, LabelSelector, PeerMiss, RuleCheck };

export interface UiNode {
  name: string;
  address: string;
  /** The underlay segment (switch) the node is on; 0 outside a lab. */
  segment: number;
  podCIDRs: string[];
  /** How its pod traffic reaches the peers: every peer direct, every one tunnelled, or both. */
  routing: "direct" | "tunnel" | "mixed" | "unknown";
  paths: { peer: string; path: "direct" | "tunnel" | "none" }[];
  podMTU?: number;
  /** "1450 = 1500 underlay − 50 VXLAN headroom ..." where known. */
  podMTUWhy?: string;
  /** undefined: not known from where the server runs (another node, seen from the cluster state). */
  ready?: boolean;
  notReady: string[];
  warnings: string[];
}

export interface UiPod {
  /** What explain names it by: node/pod in a lab, namespace/name on a node. */
  id: string;
  namespace: string;
  name: string;
  node: string;
  ips: string[];
  labels: Record<string, string>;
}

/** A Service, when the cluster state carries them. */
export interface UiService {
  namespace: string;
  name: string;
  type: string;
  clusterIPs: string[];
  ports: string[];
  selector?: Record<string, string>;
  /** The pods (namespace/name) its selector picks. */
  backends: string[];
}

export interface UiTopology {
  /** The lab's name, or the node the server runs beside. */
  title: string;
  kind: "lab" | "node";
  nodes: UiNode[];
  pods: UiPod[];
  services: UiService[];
  /** Places outside the pods and nodes that explain can start from (the lab's external host). */
  outside: { id: string; address: string }[];
}

export interface UiPolicy {
  kind: Decider["kind"];
  namespace?: string;
  name: string;
  tier: "Admin" | "NetworkPolicy" | "Baseline";
  priority?: number;
  directions: Direction[];
  /** The pods it selects, "namespace/name". */
  selects: string[];
  rules: { ingress: number; egress: number };
}

/**
 * Packets of one flow (node, verdict, protocol, source address, destination address and port,
 * deciding policy and rule) as one row, as Whisker shows them: the source port is left out, so
 * every connection attempt between the same two ends is counted in one row.
 */
export interface UiFlowRow {
  /** The row's name while the server runs (a later copy of the row has the same key). */
  key: string;
  node: string;
  verdict: "deny" | "accept";
  protocol: string;
  src: FlowEnd;
  dst: FlowEnd;
  policy?: Decider;
  count: number;
  /** ISO times of the first and last packet. */
  first: string;
  last: string;
}

export interface UiState {
  topology: UiTopology;
  policies: UiPolicy[];
  flows: UiFlowRow[];
  /** Why the cluster state could not be read (policies then empty), when it could not. */
  problems: string[];
}

/** GET /api/state: everything but the flows (GET /api/flows), so the topology is drawn before 10,000 rows arrive. */
export type UiSnapshot = Omit<UiState, "flows">;

/** POST /api/explain: src is a pod or place id (or an address), dst an id or address. */
export interface UiExplainRequest {
  src: string;
  dst: string;
  proto: "tcp" | "udp" | "icmp";
  port: number;
  probe: boolean;
}

export type UiExplainAnswer = { explanation: Explanation } | { error: string };

/** The events of /api/events (Server-Sent Events, data: JSON). */
export type UiEvent =
  | { type: "flows"; rows: UiFlowRow[] }
  | { type: "state"; state: UiSnapshot };
