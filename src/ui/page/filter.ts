// The flow table's filters (namespace, pod, verdict, policy, time) and the row order, as pure
// functions over the rows: the page and its tests use the same ones.
import type { Decider, UiFlowRow } from "../model.ts";

export interface FlowFilters {
  /** A namespace at either end. */
  namespace: string;
  /** Part of "namespace/name" of a pod at either end. */
  pod: string;
  verdict: "" | "deny" | "accept";
  /** "kind|namespace/name" of the deciding policy, or "none" for rows no policy decided. */
  policy: string;
  /** Only rows seen in the last this many minutes; 0: all. */
  minutes: number;
}

export const NO_FILTERS: FlowFilters = { namespace: "", pod: "", verdict: "", policy: "", minutes: 0 };

export const policyKey = (p: Pick<Decider, "kind" | "namespace" | "name">) => `${p.kind}|${p.namespace !== undefined ? `${p.namespace}/` : ""}${p.name}`;

const podOf = (e: UiFlowRow["src"]) => (e.pod ? `${e.namespace}/${e.pod}` : "");

export function rowMatches(r: UiFlowRow, f: FlowFilters, now: number): boolean {
  if (f.verdict && r.verdict !== f.verdict) return false;
  if (f.namespace && r.src.namespace !== f.namespace && r.dst.namespace !== f.namespace) return false;
  if (f.pod && !podOf(r.src).includes(f.pod) && !podOf(r.dst).includes(f.pod)) return false;
  if (f.policy && (f.policy === "none" ? r.policy !== undefined : !r.policy || policyKey(r.policy) !== f.policy)) return false;
  if (f.minutes && now - Date.parse(r.last) > f.minutes * 60_000) return false;
  return true;
}

/** The rows that pass, most recently seen first. */
export function filterRows(rows: Iterable<UiFlowRow>, f: FlowFilters, now: number): UiFlowRow[] {
  const out: UiFlowRow[] = [];
  for (const r of rows) if (rowMatches(r, f, now)) out.push(r);
  return out.sort((a, b) => (a.last < b.last ? 1 : a.last > b.last ? -1 : 0));
}

/** An end of a flow as a person reads it: namespace/pod, a node's name, or the address. */
export const endText = (e: UiFlowRow["src"]) => (e.pod ? `${e.namespace}/${e.pod}` : e.node ? `node ${e.node}` : e.ip);

export const deciderText = (p: Decider | undefined) => (p ? `${p.namespace !== undefined ? `${p.namespace}/` : ""}${p.name}` : "—");
