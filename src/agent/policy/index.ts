// Policy enforcement (NetworkPolicy v1, ClusterNetworkPolicy v1alpha2): compile, keep members, apply.
export { compilePolicy, NFLOG_GROUP, type PolicyStructure, type RuleDecision } from "./compile.ts";
export { PolicyEngine, type PolicySync } from "./engine.ts";
export { AttachedPods } from "./overlay.ts";
export { policyPods } from "./peers.ts";
export { systemHold, type HoldKernel } from "./hold.ts";
export { FlowLog, type FlowRecord } from "./flows.ts";
