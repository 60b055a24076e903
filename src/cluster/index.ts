// Public entry of src/cluster: the typed cluster-state view and its sources.
export type * from "./types.ts";
export { parseManifests, type ParsedManifests } from "./manifests.ts";
export { buildClusterState, nodeInfo } from "./build-state.ts";
export { ManifestsDirSource, type ManifestsDirOptions } from "./manifests-dir.ts";
export { openSource } from "./source.ts";
export { compileSelector, labelsMatch, selectNames, SelectorError, type LabelMatcher, type Labels } from "./selector.ts";
