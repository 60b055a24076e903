// The text of `mncni flows` and `mncni lab flows`: a header, then one row per flow (repeated
// packets of one flow counted in one row; the data: src/obs/flows.ts).
import type { FlowEnd, FlowRow, ShownFlowRecord } from "../../obs/flows.ts";
import { oneLine } from "./render.ts";
import { ISOLATED } from "../../cluster/index.ts";

const end = (e: FlowEnd) => `${e.namespace ? `${e.namespace}/${e.pod}` : (e.node ?? e.ip)}${e.port !== undefined ? `:${e.port}` : ""}`;

const cells = (time: string, verdict: string, proto: string, src: string, dst: string, count: string, who: string) =>
  `${time.padEnd(24)}  ${verdict.padEnd(7)} ${proto.padEnd(5)} ${src.padEnd(28)} ${dst.padEnd(28)} ${count.padStart(5)}  ${who}`;

/** The header line above the rows (the lab's rows start with the node that logged them). */
export const flowHeader = (withNode: boolean): string =>
  `${withNode ? `${"NODE".padEnd(8)} ` : ""}${cells("FIRST PACKET", "VERDICT", "PROTO", "SOURCE", "DESTINATION", "COUNT", "DECIDED BY")}`;

/** One row: one line, whatever a name in it holds. */
export const formatFlowRow = (row: FlowRow<ShownFlowRecord & { node?: string }>): string => oneLine(flowRow(row));

function flowRow({ record: r, count }: FlowRow<ShownFlowRecord & { node?: string }>): string {
  const node = r.node !== undefined ? `${r.node.padEnd(8)} ` : "";
  if (r.suppressed) return `${node}${r.time.padEnd(24)}  (${r.suppressed} more lines left out by the rate cap)`;
  const p = r.policy;
  // Isolation is no rule: the policy isolating the pod, and that none of its rules allowed the flow.
  const rule = p?.rule === ISOLATED ? "no rule allows it" : p?.rule;
  const who = p ? `${p.kind}${p.tier ? ` ${p.tier}` : ""} ${p.namespace ? `${p.namespace}/` : ""}${p.name} ${rule} (${p.direction})` : "unknown policy";
  return `${node}${cells(r.time, r.verdict.toUpperCase(), r.protocol, end(r.src), end(r.dst), String(count), who)}`;
}
