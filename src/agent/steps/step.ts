// The seam between the reconciler and its steps. A step is one thing a pass keeps in line with
// the cluster state (routes, masquerade, policy, ...): a module under src/agent/steps/ that
// exports a StepModule, listed once in index.ts. The reconciler only runs them in order and
// collects their errors; what one step hands to a later one travels in the Pass.
import type { ClusterState } from "../../cluster/types.ts";
import type { AgentConfig } from "../config.ts";
import type { Nft, NftRuleset } from "../nft-ruleset.ts";
import type { Admission } from "../pod-cidrs.ts";
import type { FastPathNode } from "../fast-path/node.ts";
import type { HoldKernel, PolicyStructure } from "../policy/index.ts";
import type { LocalAddr, PeerPath, RoutingBackend, RoutingKernel } from "../routing/index.ts";

export interface Sysctl {
  get(name: string): string;
  set(name: string, value: string): void;
}

export interface ReconcilerDeps {
  nl: RoutingKernel;
  nft: Nft;
  /** Absent: no hold (tests and benchmarks without the plugin). */
  hold?: HoldKernel;
  /** The plugin's anti-spoofing table of this node's mode; absent: not repaired (tests without the plugin). */
  antiSpoof?: { repair(): string[] };
  /** The fast path's kernel side on this node; absent: not kept (tests and benchmarks without the plugin). */
  fastPath?: FastPathNode;
  /** Told each compile's deciders and the state (the verdict log names policies and pods from them). */
  onPolicy?: (deciders: PolicyStructure["deciders"], state: ClusterState) => void;
  sysctl: Sysctl;
  /** The executable to install, undefined to skip installing (running from source). */
  binary?: string;
}

export type AgentSettings = Pick<
  AgentConfig,
  "nodeName" | "mode" | "routing" | "clusterCidr" | "nonMasqueradeCidr" | "cniConfDir" | "cniBinDir" | "ipamDataDir" | "cniLogFile" | "bridge" | "chainPortmap"
> &
  Partial<Pick<AgentConfig, "sandboxGcGrace" | "cniSocket" | "cniVersion" | "mtu" | "routingSettings" | "policyLogAccepts" | "serviceProxy" | "nodeportAddresses" | "fastPath">>;

export interface ReconcileReport {
  /** Errors by step name (the names of index.ts's STEPS). */
  errors: { step: string; message: string }[];
  /** Things the cluster state asks for that cannot (or must not) be done, each a complete sentence. */
  problems: string[];
  /**
   * Peers the routing backend cannot reach (not on-link for host-gw, no InternalIP of the
   * family, other VXLAN settings), one sentence each: warnings, not problems. The node stays
   * ready and routes to every other peer, so one node joining on another subnet never takes
   * the rest of the cluster out (nor stalls a rollout waiting for readiness).
   */
  peerWarnings: string[];
  /** What else is worth knowing about this node but does not make it not ready (br_netfilter missing in bridge mode), one sentence each. */
  warnings: string[];
  /** What changed, for logs; empty on a no-change pass. */
  changes: string[];
  /** Kernel and file writes this pass made (0 on a no-change resync). */
  writes: number;
  routesProgrammed: number;
  /** How each peer is reached after the pass, by node name (auto: direct or tunnel). */
  paths: Map<string, PeerPath>;
  /** What the routing backend publishes on this node's Node for its peers (undefined when the routes step did not run). */
  routingPublished?: Record<string, string>;
  /** The pod MTU written to the conflist (undefined until it is written). */
  podMTU?: number;
  /** Why the pod MTU is what it is ("1450 = 1500 underlay − 50 VXLAN header"), set with podMTU. */
  podMTUWhy?: string;
  /** Peers that published a pod MTU other than this node's, with theirs (empty until podMTU is set). */
  podMTUMismatch: Map<string, number>;
  conflistWritten: boolean;
  /** Policy objects the kernel refused, left out while the rest is programmed (a warning, not a readiness failure). */
  policyRejected?: string[];
  /**
   * The source's state the policy step programmed in this pass (undefined when it did not: a
   * policy kind unreadable, or the step failed). Its fingerprint is served on /readyz, so a
   * reader of the source (lab check) knows when this node enforces what it reads.
   */
  policyProgrammedFrom?: ClusterState;
  /** No errors, no problems, and the conflist is in place. */
  converged: boolean;
}

export const emptyReconcileReport = (): ReconcileReport => ({
  errors: [], problems: [], peerWarnings: [], warnings: [], changes: [], writes: 0, routesProgrammed: 0, paths: new Map(), podMTUMismatch: new Map(), conflistWritten: false, converged: false,
});

/** What the steps of one pass share. */
export interface Pass {
  state: ClusterState;
  r: ReconcileReport;
  localAddrs: LocalAddr[];
  admitted?: Admission;
  /** This node's admitted pod CIDRs, in the Node's order (it says which family is primary). */
  own: string[];
  /** Steps that reported an error this pass. */
  failed: Set<string>;
  /** The cluster has policies: the conflist asks the plugin to hold new pods. */
  policyHold?: boolean;
  /** The nftables ruleset (over netlink: tables, chains, foreign forward rules), once read in this pass (listedRuleset). */
  ruleset?: NftRuleset;
}

/** What every step is built with: the agent's settings, the kernel, and what steps share across passes. */
export interface StepContext {
  cfg: AgentSettings;
  deps: ReconcilerDeps;
  /** The backend --routing chose, and every registered one (those not in use are removed). */
  routing: { active: RoutingBackend; all: RoutingBackend[] };
  /**
   * This node's pod CIDRs its pods have addresses from: the conflist's, read once from disk by
   * the pod-cidrs step, replaced by the conflist step when it writes others.
   */
  ownInUse: { cidrs?: string[] };
}

/** A pod a served ADD has just attached, before the runtime hears back. */
export interface AttachedPod {
  namespace: string;
  name: string;
  ips: string[];
}

/** One step as a pass runs it. */
export interface StepRun {
  /** The step's part of a pass; a throw is the step's error (the pass goes on). */
  run(p: Pass): void;
  /** After every pass, run or not: what the step reports across passes (the conflist in place). */
  finish?(p: Pass): void;
  /** A served ADD's fast path: what the step must do for the pod before the ADD is answered; returns what changed. */
  attachedPod?(state: ClusterState, pod: AttachedPod): string[];
}

export interface StepModule<N extends string = string> {
  /** Names the step in errors, logs and metrics. */
  readonly name: N;
  /** Acts on the admitted pod CIDRs: skipped when admission failed (acting on none would remove every route). */
  readonly needsAdmission?: boolean;
  create(ctx: StepContext): StepRun;
}

/** The ruleset (terse), listed once per pass. */
export function listedRuleset(p: Pass, nft: Nft): NftRuleset {
  p.ruleset ??= nft.list();
  return p.ruleset;
}

/** This node's InternalIPs (the local end of tunnels, the underlay for the pod MTU). */
export function selfIPs(p: Pass, nodeName: string): string[] {
  return p.state.nodes.get(nodeName)?.internalIPs ?? [];
}
