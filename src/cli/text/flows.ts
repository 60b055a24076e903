// The text of `mncni flows` and `mncni lab flows`: one policy verdict per line (the data:
// src/obs/flows.ts).
import type { FlowRecord } from "../../obs/flows.ts";
import { oneLine } from "./render.ts";

const end = (e: FlowRecord["src"]) => `${e.namespace ? `${e.namespace}/${e.pod}` : e.ip}${e.port !== undefined ? `:${e.port}` : ""}`;

/** One record as a table row: one line, whatever a name in it holds. */
export const formatFlow = (r: FlowRecord): string => oneLine(flowRow(r));

function flowRow(r: FlowRecord): string {
  if (r.suppressed) return `${r.time}  (${r.suppressed} more lines left out by the rate cap)`;
  const p = r.policy;
  const who = p ? `${p.kind}${p.tier ? ` ${p.tier}` : ""} ${p.namespace ? `${p.namespace}/` : ""}${p.name} ${p.rule} (${p.direction})` : "unknown policy";
  return `${r.time}  ${r.verdict.toUpperCase().padEnd(6)} ${r.protocol.padEnd(5)} ${end(r.src).padEnd(28)} -> ${end(r.dst).padEnd(28)} ${who}`;
}
