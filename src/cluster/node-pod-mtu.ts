// This node's pod MTU, published on its Node as the mncni.io/pod-mtu annotation so every other
// agent can compare it with its own (a merge patch of the Node's metadata, by NodePatch), and
// a mismatch with the peers' reported as a Warning Event on the Node (docs/routing.md, MTU).
import { EventRecorder, type KubeClient, type KubeObject } from "../kube/index.ts";
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

/** Kubernetes caps an Event's message at 1 KiB. */
const EVENT_MESSAGE_MAX = 1024;

/**
 * A Warning Event `PodMTUMismatch` on this node's Node each time the set of mismatching peers
 * changes to a non-empty one: `kubectl describe node` shows it, and passes that find the same
 * mismatch post nothing more.
 */
export class PodMTUMismatchEvents {
  private readonly recorder: EventRecorder;
  private last = "";

  constructor(client: KubeClient, private readonly nodeName: string, private readonly cachedNode: (name: string) => KubeObject | undefined) {
    this.recorder = new EventRecorder(client, "mncni-agent", nodeName);
  }

  report(mismatches: readonly string[]): void {
    const key = mismatches.join("\n");
    if (key === this.last) return;
    const node = this.cachedNode(this.nodeName);
    if (!node) return; // no Node to name yet: the next pass tries again
    this.last = key;
    if (!mismatches.length) return;
    const message = mismatches.join("; ").slice(0, EVENT_MESSAGE_MAX);
    this.recorder.record({ ...node, kind: "Node" }, { type: "Warning", reason: "PodMTUMismatch", message }).catch((e: Error) => {
      console.error(`mncni agent: cannot create event PodMTUMismatch on node "${this.nodeName}": ${e.message}`);
    });
  }
}
