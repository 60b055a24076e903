// This node's pod MTU, published on its Node as the mncni.io/pod-mtu annotation so every other
// agent can compare it with its own (a mismatch is reported there, docs/routing.md). A merge
// patch of the Node's metadata, by NodePatch.
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { NodePatch } from "./node-patch.ts";
import { POD_MTU_ANNOTATION } from "./types.ts";

export function nodePodMTU(client: KubeClient, nodeName: string, cachedNode: (name: string) => KubeObject | undefined): NodePatch<KubeObject> {
  return new NodePatch(client, nodeName, cachedNode, {
    what: `annotation ${POD_MTU_ANNOTATION}`,
    carries: (node, value) => node.metadata?.annotations?.[POD_MTU_ANNOTATION] === value,
    patch: (value) => ({ body: { metadata: { annotations: { [POD_MTU_ANNOTATION]: value } } }, type: "merge" }),
    metric: { name: "mncni_agent_pod_mtu", help: "Patches of this node's mncni.io/pod-mtu annotation" },
  });
}
