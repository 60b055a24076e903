// The page's flow table on the server: verdict records folded into one row per flow (see
// UiFlowRow), the most recent MAX_ROWS kept, so a long-running server's memory stays bounded
// however long the verdict logs grow.
import type { FlowRecord, ShownFlowRecord } from "../obs/flows.ts";
import type { UiFlowRow } from "./model.ts";

/** Rows kept: the page's "recent flows" (the benchmark's 10,000 with room to spare). */
export const MAX_ROWS = 20_000;

const rowKey = (node: string, r: FlowRecord) => {
  const p = r.policy;
  return [node, r.verdict, r.protocol, r.src.ip, r.dst.ip, r.dst.port ?? "", p?.kind ?? "", p?.namespace ?? "", p?.name ?? "", p?.rule ?? "", p?.direction ?? ""].join("|");
};

export class FlowRows {
  /** Insertion order is recency order: a row seen again moves to the end. */
  private readonly rows = new Map<string, UiFlowRow>();
  /** Rows are named by a number of their own on the wire: the flow's fields are in the row already. */
  private next = 1;

  constructor(private readonly max = MAX_ROWS) {}

  /** Folds the records in; returns the rows they changed (each once, as it is now). */
  add(records: (ShownFlowRecord & { node: string })[]): UiFlowRow[] {
    const changed = new Map<string, UiFlowRow>();
    for (const r of records) {
      if (r.suppressed) continue; // a rate-cap line names no flow
      const key = rowKey(r.node, r);
      const row = this.rows.get(key);
      if (row) {
        row.count++;
        if (r.time > row.last) row.last = r.time;
        this.rows.delete(key);
        this.rows.set(key, row);
        changed.set(key, row);
      } else {
        const { port: _srcPort, ...src } = r.src;
        const fresh: UiFlowRow = { key: (this.next++).toString(36), node: r.node, verdict: r.verdict, protocol: r.protocol, src, dst: r.dst, ...(r.policy ? { policy: r.policy } : {}), count: 1, first: r.time, last: r.time };
        this.rows.set(key, fresh);
        changed.set(key, fresh);
      }
    }
    while (this.rows.size > this.max) this.rows.delete(this.rows.keys().next().value!);
    return [...changed.values()];
  }

  /** Every row, most recent last. */
  all(): UiFlowRow[] {
    return [...this.rows.values()];
  }

  get size(): number {
    return this.rows.size;
  }
}
