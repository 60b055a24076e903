// The Kubernetes API client layer: config, HTTP client, informers, leader election, events.
export { inClusterSource, loadInCluster, loadKubeconfig, loadKubeConfig, fileToken, KubeConfigError, type KubeConfig, type InClusterOpts } from "./config.ts";
export { Backoff, retryAfterMs, sleep, type BackoffOpts } from "./backoff.ts";
export { KubeClient, KubeApiError, WatchHeaderTimeout, isConflict, isGone, isNotFound, type ClientOpts, type ListOpts, type WatchOpts } from "./client.ts";
export { Informer, type InformerHandlers, type InformerMetrics, type InformerOpts, type RestartReason } from "./informer.ts";
export { KubeMetrics } from "./metrics.ts";
export { LeaderElector, type LeaderElectionOpts } from "./leader-election.ts";
export { EventRecorder, type EventSpec } from "./events.ts";
export { RESOURCES, resourcePath, type Resource } from "./resources.ts";
export { objectKey, PATCH_CONTENT_TYPE, type KubeList, type KubeObject, type PatchType, type WatchEvent } from "./types.ts";
export type * from "./types.ts";
