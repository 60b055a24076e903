// The lab's pods as `lab pods` and `lab status` report them: where each runs, its Kubernetes
// identity, addresses and labels (from the lab's record, which its manifests are written from, or
// from the API server on the kubernetes source), and its ADD time as the plugin measured it (the
// node's invocation log, as `inspect` shows it).
import { k8sPodName, podLabels } from "./write-manifests.ts";
import { labPodRef, type LabState } from "./state.ts";
import { nodePaths } from "./topology.ts";
import { readInvocations } from "../cni/log-reader.ts";

export interface LabPod {
  /** The lab's name of the pod on its node (node/name for `lab exec`, `lab pod remove`). */
  name: string;
  /** How lab commands name it: node1/pod2, or node1/z/web when another pod of the node is called web too (labPodRef). */
  ref: string;
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
  /**
   * Its last successful CNI ADD in milliseconds as the plugin measured it (its invocation log:
   * the number `inspect` shows under LAST ADD). One definition for both commands.
   */
  addMs?: number;
  /**
   * What the lab's runtime waited for that ADD (process start of the plugin, `ip netns exec`
   * into the node and its /sys remount, the chain; containerd: the RunPodSandbox call): larger.
   */
  runtimeAddMs?: number;
}

/** containerId -> the plugin's own duration of its last successful ADD, from a node's invocation log. */
function pluginAddTimes(logFile: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of readInvocations(logFile)) if (r.plugin === "mncni" && r.command === "ADD" && r.outcome === "ok" && r.containerId) out.set(r.containerId, r.durationMs);
  return out;
}

/** `labelsOf`: the Pods' labels as the API server has them (namespace/name), over the lab's record. */
export function listPods(s: LabState, labelsOf?: Map<string, Record<string, string>>): LabPod[] {
  return s.nodes.flatMap((n) => {
    const adds = pluginAddTimes(nodePaths(s.name, n.name).cniLog);
    return n.pods.map((p) => {
      const addMs = adds.get(p.sandboxId ?? p.containerId);
      return {
        name: p.name, ref: labPodRef(n, p), k8sName: k8sPodName(p), node: n.name, namespace: p.ns, k8sNamespace: p.namespace, ips: p.ips,
        labels: labelsOf?.get(`${p.namespace}/${k8sPodName(p)}`) ?? podLabels(p),
        ...(addMs !== undefined ? { addMs } : {}), ...(p.addMs !== undefined ? { runtimeAddMs: p.addMs } : {}),
      };
    });
  });
}
