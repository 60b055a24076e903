// The lab's pods as `lab pods` and `lab status` report them: where each runs, its Kubernetes
// identity, addresses and labels (from the lab's record, which its manifests are written from, or
// from the API server on the kubernetes source).
import { k8sPodName, podLabels } from "./write-manifests.ts";
import type { LabState } from "./state.ts";

export interface LabPod {
  /** The lab's name of the pod on its node (node/name for `lab exec`, `lab pod remove`). */
  name: string;
  /** The Pod's metadata.name. */
  k8sName: string;
  node: string;
  /** The pod's network namespace (/run/netns/<namespace>). */
  namespace: string;
  /** The Pod's metadata.namespace. */
  k8sNamespace: string;
  ips: string[];
  /** Every label of the Pod, the lab's app and node included. */
  labels: Record<string, string>;
  /** Time of its CNI ADD in milliseconds, as the lab measured it. */
  addMs?: number;
}

/** `labelsOf`: the Pods' labels as the API server has them (namespace/name), over the lab's record. */
export function listPods(s: LabState, labelsOf?: Map<string, Record<string, string>>): LabPod[] {
  return s.nodes.flatMap((n) =>
    n.pods.map((p) => ({
      name: p.name, k8sName: k8sPodName(p), node: n.name, namespace: p.ns, k8sNamespace: p.namespace, ips: p.ips,
      labels: labelsOf?.get(`${p.namespace}/${k8sPodName(p)}`) ?? podLabels(p), addMs: p.addMs,
    })),
  );
}
