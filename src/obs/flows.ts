// The policy verdict log the agent writes (JSON lines, src/agent/policy/flows.ts; see
// docs/policy.md), read back as records: whole, or followed as it grows (and is rotated).
// `mncni flows` and `mncni lab flows` render them.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { networkInterfaces } from "node:os";
import type { FlowRecord } from "../agent/policy/flows.ts";
import type { ClusterState } from "../cluster/types.ts";

export type { FlowRecord };

/** One line of the log: a record, or the text of a line that is not one (shown as it is). */
export type FlowLine = { record: FlowRecord } | { malformed: string };

function parseFlowLines(text: string): FlowLine[] {
  return text.split("\n").filter(Boolean).map((l) => {
    try {
      return { record: JSON.parse(l) as FlowRecord };
    } catch {
      return { malformed: l };
    }
  });
}

/**
 * Calls onLines with every complete line of `file` from its start, then (follow) with what is
 * appended, every 250 ms (everyMs); returns a stop function. A file that shrank was rotated: read anew.
 */
export function followFlows(file: string, onLines: (lines: FlowLine[]) => void, o: { follow: boolean; everyMs?: number }): () => void {
  let pos = 0;
  let rest = "";
  const more = () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size < pos) pos = 0; // rotated
    if (size === pos) return;
    const fd = openSync(file, "r");
    try {
      const buf = Buffer.alloc(size - pos);
      readSync(fd, buf, 0, buf.length, pos);
      pos = size;
      const text = rest + buf.toString("utf8");
      const cut = text.lastIndexOf("\n") + 1;
      rest = text.slice(cut);
      const lines = parseFlowLines(text.slice(0, cut));
      if (lines.length) onLines(lines);
    } finally {
      closeSync(fd);
    }
  };
  more();
  if (!o.follow) return () => {};
  const t = setInterval(more, o.everyMs ?? 250);
  return () => clearInterval(t);
}

/** Every record of the file (none when it does not exist); a line cut by a crash is skipped. */
export function readFlows(file: string): FlowRecord[] {
  const out: FlowRecord[] = [];
  followFlows(file, (lines) => out.push(...lines.flatMap((l) => ("record" in l ? [l.record] : []))), { follow: false });
  return out;
}

/** Which records to show: a pod at either end, a namespace at either end, a verdict. */
export interface FlowFilter {
  pod?: { namespace: string; name: string };
  namespace?: string;
  /** The user's word: `allow` is the log's `accept`. */
  verdict?: "allow" | "deny";
}

/** "NS/NAME" as a pod reference, or why not (for a flag's check). */
export function podRefProblem(text: string): string | null {
  const parts = text.split("/");
  return parts.length === 2 && parts[0] && parts[1] ? null : "must be NAMESPACE/NAME";
}

export const parsePodRef = (text: string): { namespace: string; name: string } => {
  const [namespace, name] = text.split("/") as [string, string];
  return { namespace, name };
};

/** Whether a record passes the filter. A rate-cap line names no flow: shown only unfiltered. */
export function flowMatches(r: FlowRecord, f: FlowFilter): boolean {
  if (r.suppressed) return !f.pod && !f.namespace && !f.verdict;
  if (f.verdict && r.verdict !== (f.verdict === "allow" ? "accept" : "deny")) return false;
  const ends = [r.src, r.dst];
  if (f.namespace && !ends.some((e) => e.namespace === f.namespace)) return false;
  if (f.pod && !ends.some((e) => e.namespace === f.pod!.namespace && e.pod === f.pod!.name)) return false;
  return true;
}

/** Node addresses -> node names (the lab knows every node's; a node its own). */
export type NodeNames = ReadonlyMap<string, string>;

/** Every Node's InternalIPs named by the Node (the cluster state the agent reads: its --source). */
export function clusterNodeNames(state: Pick<ClusterState, "nodes">): NodeNames {
  const out = new Map<string, string>();
  for (const n of state.nodes.values()) for (const ip of n.internalIPs) out.set(ip, n.name);
  return out;
}

/** Every address of this host's network namespace named `name` (the node's own, as `mncni status` names it). */
export function ownNodeNames(name: string): NodeNames {
  const out = new Map<string, string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) out.set(a.address, name);
  return out;
}

/** An end of a flow as the readers show it: a node's address carries the node's name. */
export type FlowEnd = FlowRecord["src"] & { node?: string };
/** A record as `mncni flows` and `mncni lab flows` print it (--json too). */
export type ShownFlowRecord = Omit<FlowRecord, "src" | "dst"> & { src: FlowEnd; dst: FlowEnd };

/** The record with each end that is a node's address (not a pod) named by its node. */
export function withNodeNames<R extends FlowRecord>(r: R, names: NodeNames): R & ShownFlowRecord {
  const end = (e: FlowRecord["src"]): FlowEnd => (!e.pod && names.has(e.ip) ? { ...e, node: names.get(e.ip)! } : e);
  return r.suppressed ? r : { ...r, src: end(r.src), dst: end(r.dst) };
}

/**
 * Packets of one flow closer together than this are one row: a SYN the peer never answers is
 * sent again after 1, 2 and 4 s (Linux's initial RTO doubling), so a blocked connect attempt
 * is one row with its count rather than a row per retransmission.
 */
export const FLOW_WINDOW_MS = 5_000;

/** Repeated packets of one flow (same 5-tuple, verdict, decider) as one row. */
export interface FlowRow<R extends FlowRecord = FlowRecord> {
  /** The first packet's record. */
  record: R;
  count: number;
  /** The last packet's time. */
  last: string;
}

const flowKey = (r: FlowRecord) => {
  const p = r.policy;
  return [r.verdict, r.protocol, r.src.ip, r.src.port, r.dst.ip, r.dst.port, p?.kind, p?.namespace, p?.name, p?.rule, p?.direction].join("|");
};

/**
 * Gathers records into rows: a row closes when its flow is seen again more than the window
 * after its last packet, when `due` finds it idle that long, or at `flush`. `extraKey` keeps
 * apart what one flow key does not (the lab: the node that logged it).
 */
export class FlowAggregator<R extends FlowRecord> {
  private readonly open = new Map<string, FlowRow<R>>();

  constructor(private readonly extraKey: (r: R) => string = () => "", private readonly windowMs = FLOW_WINDOW_MS) {}

  /** Adds a record; returns the rows it closed. */
  add(r: R): FlowRow<R>[] {
    if (r.suppressed) return [{ record: r, count: 1, last: r.time }];
    const key = `${this.extraKey(r)}|${flowKey(r)}`;
    const row = this.open.get(key);
    if (row && Date.parse(r.time) - Date.parse(row.last) <= this.windowMs) {
      row.count++;
      row.last = r.time;
      return [];
    }
    this.open.set(key, { record: r, count: 1, last: r.time });
    return row ? [row] : [];
  }

  /** Closes the rows idle for longer than the window at `now` (ms). */
  due(now: number): FlowRow<R>[] {
    const out: FlowRow<R>[] = [];
    for (const [k, row] of this.open) if (now - Date.parse(row.last) > this.windowMs) {
      out.push(row);
      this.open.delete(k);
    }
    return byTime(out);
  }

  /** Closes every row. */
  flush(): FlowRow<R>[] {
    const out = [...this.open.values()];
    this.open.clear();
    return byTime(out);
  }
}

/** Rows in time order of their first packet. */
export const byTime = <R extends FlowRecord>(rows: FlowRow<R>[]) => rows.sort((a, b) => (a.record.time < b.record.time ? -1 : a.record.time > b.record.time ? 1 : 0));

/** Records as rows, in time order of their first packet. */
export function aggregateFlows<R extends FlowRecord>(records: R[], extraKey?: (r: R) => string): FlowRow<R>[] {
  const agg = new FlowAggregator<R>(extraKey);
  const out = records.flatMap((r) => agg.add(r));
  return byTime([...out, ...agg.flush()]);
}
