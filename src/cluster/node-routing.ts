// What a node's routing backend publishes for its peers (VXLAN: its VNI and port; a WireGuard
// public key or a BGP next hop next), on the node's own Node status as the MncniRouting
// condition, whose message is a JSON object of strings. Published by a strategic merge patch of
// nodes/status, the channel of NetworkUnavailable: the agent may write only Node status, never
// patch Nodes (a token cannot be limited to its own Node, and a patch of Nodes would let one
// node taint, cordon or relabel every other). Peers read it back from their Node cache.
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { NodePatch } from "./node-patch.ts";

export const ROUTING_CONDITION = "MncniRouting";

interface Condition {
  type?: string;
  status?: string;
  message?: string;
}

type NodeWithConditions = KubeObject & { status?: { conditions?: Condition[] } };

/** The condition's message for some data: keys sorted, so equal data is an equal string. */
export function encodeRoutingData(data: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/**
 * What a Node's MncniRouting condition carries; undefined when it has none, or one that is not
 * a JSON object of strings: that node is taken to publish nothing (never a problem of the
 * reading node, which a peer could otherwise take out of readiness by writing garbage).
 */
export function routingDataOf(node: { status?: unknown }): Record<string, string> | undefined {
  const conditions = (node.status as { conditions?: unknown } | undefined)?.conditions;
  const c = Array.isArray(conditions) ? (conditions as Condition[]).find((x) => x?.type === ROUTING_CONDITION) : undefined;
  if (!c || c.status !== "True") return undefined;
  try {
    const v: unknown = JSON.parse(String(c.message ?? ""));
    if (v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string")) return v as Record<string, string>;
  } catch {
    // not JSON: nothing published
  }
  return undefined;
}

export function nodeRoutingData(client: KubeClient, nodeName: string, cachedNode: (name: string) => NodeWithConditions | undefined): NodePatch<NodeWithConditions> {
  return new NodePatch(client, nodeName, cachedNode, {
    what: `status condition ${ROUTING_CONDITION}`,
    carries: (node, message) => {
      const c = node.status?.conditions?.find((x) => x.type === ROUTING_CONDITION);
      return c?.status === "True" && c.message === message;
    },
    patch: (message) => {
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const condition = { type: ROUTING_CONDITION, status: "True", reason: "Published", message, lastTransitionTime: now, lastHeartbeatTime: now };
      return { body: { status: { conditions: [condition] } }, type: "strategic", subresource: "status" };
    },
    metric: { name: "mncni_agent_routing_data", help: `Patches of this node's ${ROUTING_CONDITION} status condition (what its routing backend publishes for the peers)` },
  });
}
