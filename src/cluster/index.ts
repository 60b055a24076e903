// Public entry of src/cluster: the typed cluster-state view, its sources, selectors and the
// policy evaluator. Other folders import values from here (type-only imports may name a file).
export type * from "./types.ts";
export { parseManifests, type ParsedManifests } from "./manifests.ts";
export { buildClusterState, nodeInfo } from "./build-state.ts";
export { ManifestsDirSource, type ManifestsDirOptions } from "./manifests-dir.ts";
export { openSource } from "./source.ts";
export { POD_MTU_CONDITION, PROTOCOLS, SERVICE_NAME_LABEL } from "./types.ts";
export { DEFAULT_MAX_ENDPOINTS_PER_SLICE, desiredSlices, hasSelector, MANAGED_BY, MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, podEndpoint, selects, sliceContent, type EndpointPod } from "./endpoint-slices.ts";
export { DEFAULT_AFFINITY_SECONDS, endpointSliceInfo, serviceInfo } from "./service-state.ts";
export { compileSelector, labelsMatch, selectNames, selectorText, SelectorError, unmetRequirements, type LabelMatcher, type Labels, type UnmetRequirement } from "./selector.ts";
export {
  describeDecider, ISOLATED, PolicyEvaluator, policyName,
  type DirectionVerdict, type DirectionWhy, type ExplainedDirection, type ExplainedVerdict, type Flow, type PeerMiss, type PolicyCheck, type RuleCheck, type SelectingPolicy, type Verdict,
} from "./evaluate-policy.ts";
export { AddressClaims, addressPods } from "./pod-addresses.ts";
export { NO_POLICY_INPUTS, policyInputs } from "./policy-inputs.ts";
