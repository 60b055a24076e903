// This node's pod MTU, published on its Node's status as the MncniPodMTU condition (the number
// is its message) so every other agent can compare it with its own: a strategic merge patch of
// nodes/status by NodePatch, the only write to Nodes the agent's RBAC allows. A mismatch with
// the peers' is reported as a Warning Event on the Node (docs/routing.md, MTU).
import { EventRecorder, type KubeClient, type KubeObject } from "../kube/index.ts";
import { NodePatch } from "./node-patch.ts";
import { POD_MTU_CONDITION, type NodeCondition } from "./types.ts";

type NodeWithConditions = KubeObject & { status?: { conditions?: NodeCondition[] } };

export function nodePodMTU(client: KubeClient, nodeName: string, cachedNode: (name: string) => NodeWithConditions | undefined): NodePatch<NodeWithConditions> {
  return new NodePatch(client, nodeName, cachedNode, {
    what: `status condition ${POD_MTU_CONDITION}`,
    carries: (node, value) => {
      const c = node.status?.conditions?.find((x) => x.type === POD_MTU_CONDITION);
      return c?.status === "True" && c.message === value;
    },
    patch: (value) => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const condition: NodeCondition = { type: POD_MTU_CONDITION, status: "True", reason: "Published", message: value, lastTransitionTime: now, lastHeartbeatTime: now };
      return { body: { status: { conditions: [condition] } }, type: "strategic", subresource: "status" };
    },
    metric: { name: "mncni_agent_pod_mtu", help: `Patches of this node's ${POD_MTU_CONDITION} status condition` },
  });
}

/** Kubernetes caps an Event's message at 1 KiB. */
const EVENT_MESSAGE_MAX = 1024;

/**
 * A Warning Event on this node's Node (reason `PodMTUMismatch` by default; the policy step's
 * `PolicyNotProgrammed` too) each time the list it reports changes to a non-empty one:
 * `kubectl describe node` shows it, and passes that find the same list post nothing more.
 */
export class NodeWarningEvents {
  private readonly recorder: EventRecorder;
  private last = "";

  constructor(client: KubeClient, private readonly nodeName: string, private readonly cachedNode: (name: string) => KubeObject | undefined, private readonly reason = "PodMTUMismatch") {
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
    this.recorder.record({ ...node, kind: "Node" }, { type: "Warning", reason: this.reason, message }).catch((e: Error) => {
      console.error(`mncni agent: cannot create event ${this.reason} on node "${this.nodeName}": ${e.message}`);
    });
  }
}
