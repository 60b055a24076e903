// Policy enforcement (NetworkPolicy v1, ClusterNetworkPolicy v1alpha2): compile, keep members, apply.
export { compilePolicy, NFLOG_GROUP, npTypes, POLICY_FAMILY, POLICY_TABLE, type PolicyStructure, type Direction } from "./compile.ts";
export { PolicyEngine, type PolicySync } from "./engine.ts";
export { AttachedPods } from "./overlay.ts";
export { policyPods } from "./peers.ts";
export { HOLD_TABLE_SCRIPT, systemHold, type HoldKernel } from "./hold.ts";
export { FlowLog, type FlowRecord } from "./flows.ts";
