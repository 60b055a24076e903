// Policy enforcement (NetworkPolicy v1, ClusterNetworkPolicy v1alpha2): compile, plan, apply.
export { compilePolicy, npTypes, POLICY_FAMILY, POLICY_TABLE, type CompiledPolicy, type Direction } from "./compile.ts";
export { planPolicy, type PolicyPlan } from "./plan.ts";
export { AttachedPods } from "./overlay.ts";
export { policyPods } from "./peers.ts";
export { HOLD_TABLE_SCRIPT } from "./hold.ts";
