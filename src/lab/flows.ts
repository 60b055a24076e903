// The policy verdict logs of a lab's nodes (each node's agent writes flows.log beside its
// agent.log), merged in time order, each record with its node, ends at a node's address named
// by the node.
import { join } from "node:path";
import { followFlows, readFlows, withNodeNames, type FlowRecord, type NodeNames, type ShownFlowRecord } from "../obs/flows.ts";
import type { LabState } from "./state.ts";
import { nodePaths } from "./topology.ts";

export type LabFlowRecord = ShownFlowRecord & { node: string };

/** The lab's node addresses (underlay, both families) -> node names. */
export function labNodeNames(s: LabState): NodeNames {
  return new Map(s.nodes.flatMap((n) => [[n.address, n.name] as const, ...(n.address6 ? [[n.address6, n.name] as const] : [])]));
}

function nodesOf(s: LabState, node?: string) {
  const nodes = s.nodes.filter((n) => !node || n.name === node);
  if (node && nodes.length === 0) throw new Error(`no node "${node}" in lab "${s.name}"`);
  return nodes;
}

const named = (s: LabState, names: NodeNames, node: string, r: FlowRecord): LabFlowRecord => ({ ...withNodeNames(r, names), node });
const flowsFile = (s: LabState, node: string) => join(nodePaths(s.name, node).dir, "flows.log");

/** Every node's verdicts, or one node's (an unknown node: an error naming the lab's nodes). */
export function labFlows(s: LabState, node?: string): LabFlowRecord[] {
  const names = labNodeNames(s);
  const records = nodesOf(s, node).flatMap((n) => readFlows(flowsFile(s, n.name)).map((r) => named(s, names, n.name, r)));
  return records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

/** Calls onRecords with what the nodes' logs hold and (follow) what they are appended; returns a stop function. */
export function followLabFlows(s: LabState, node: string | undefined, onRecords: (records: LabFlowRecord[]) => void, o: { follow: boolean; everyMs?: number }): () => void {
  const names = labNodeNames(s);
  const stops = nodesOf(s, node).map((n) =>
    followFlows(flowsFile(s, n.name), (lines) => onRecords(lines.flatMap((l) => ("record" in l ? [named(s, names, n.name, l.record)] : []))), o),
  );
  return () => stops.forEach((stop) => stop());
}
