// Wire types of the Kubernetes API. The object types come from @kubernetes/client-node as
// type-only imports: they vanish at compile time, so none of that package (nor its HTTP
// layer, see client.ts) is loaded at runtime.
import type { CoreV1Event, V1Lease, V1Namespace, V1NetworkPolicy, V1Node, V1ObjectMeta, V1Pod, V1Status } from "@kubernetes/client-node";

export type { CoreV1Event, V1Lease, V1Namespace, V1NetworkPolicy, V1Node, V1ObjectMeta, V1Pod, V1Status };

/** What every object the client handles has: metadata with a name. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

/** A list response (NodeList, PodList, ...). */
export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

/** One line of a watch stream. ERROR carries a Status (410 Expired when the resourceVersion is too old). */
export type WatchEvent<T> = { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; object: T } | { type: "ERROR"; object: V1Status };

export type PatchType = "merge" | "strategic" | "json";

export const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

/** Cache key of an object: "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export function objectKey(o: KubeObject): string {
  const m = o.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ""}` : (m.name ?? "");
}
