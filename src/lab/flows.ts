// The policy verdict logs of a lab's nodes (each node's agent writes flows.log beside its
// agent.log), merged in time order, each record with its node.
import { join } from "node:path";
import { readFlows, type FlowRecord } from "../obs/flows.ts";
import type { LabState } from "./state.ts";
import { nodePaths } from "./topology.ts";

export type LabFlowRecord = FlowRecord & { node: string };

/** Every node's verdicts, or one node's (an unknown node: an error naming the lab's nodes). */
export function labFlows(s: LabState, node?: string): LabFlowRecord[] {
  const nodes = s.nodes.filter((n) => !node || n.name === node);
  if (node && nodes.length === 0) throw new Error(`no node "${node}" in lab "${s.name}"`);
  const records = nodes.flatMap((n) => readFlows(join(nodePaths(s.name, n.name).dir, "flows.log")).map((r) => ({ ...r, node: n.name })));
  return records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
