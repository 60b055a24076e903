// The Node's NetworkUnavailable condition, set to False (reason MncniIsUp) once this node's
// routes and conflist are in place, as Calico and Flannel do: the scheduler and the cloud
// route controller read it. Patched on nodes/status (strategic merge) by NodePatch.
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { NodePatch } from "./node-patch.ts";

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
}

type NodeWithConditions = KubeObject & { status?: { conditions?: Condition[] } };

export const NETWORK_UNAVAILABLE = "NetworkUnavailable";
const REASON = "MncniIsUp";

export function nodeCondition(client: KubeClient, nodeName: string, cachedNode: (name: string) => NodeWithConditions | undefined): NodePatch<NodeWithConditions> {
  return new NodePatch(client, nodeName, cachedNode, {
    what: `status condition ${NETWORK_UNAVAILABLE}`,
    carries: (node, status) => {
      const c = node.status?.conditions?.find((x) => x.type === NETWORK_UNAVAILABLE);
      return c?.status === status && c.reason === REASON;
    },
    patch: (status) => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const condition = {
        type: NETWORK_UNAVAILABLE, status, reason: REASON,
        message: "mncni is running on this node: routes and CNI configuration are in place",
        lastTransitionTime: now, lastHeartbeatTime: now,
      };
      return { body: { status: { conditions: [condition] } }, type: "strategic", subresource: "status" };
    },
    metric: { name: "mncni_agent_node_condition", help: "NetworkUnavailable=False patches of this node's status" },
  });
}
