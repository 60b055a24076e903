// `mncni trace`: the invocation log as one line per CNI call, and a running summary
// (calls, errors, p50/p99 duration per verb) — what strace on the runtime was used for.
import type { InvocationRecord } from "../cni/invocation-log.ts";
import { readInvocations } from "../cni/log-reader.ts";

export interface VerbSummary {
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** Durations kept per verb so percentiles are exact (a node makes a few thousand calls a day). */
export class TraceSummary {
  private readonly durations = new Map<string, number[]>();
  private readonly errors = new Map<string, number>();

  add(r: InvocationRecord): void {
    const d = this.durations.get(r.command) ?? [];
    d.push(r.durationMs);
    this.durations.set(r.command, d);
    if (r.outcome === "error") this.errors.set(r.command, (this.errors.get(r.command) ?? 0) + 1);
  }

  get(): Record<string, VerbSummary> {
    const out: Record<string, VerbSummary> = {};
    for (const [verb, ds] of [...this.durations].sort()) {
      const s = [...ds].sort((a, b) => a - b);
      const pct = (p: number) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
      out[verb] = { calls: s.length, errors: this.errors.get(verb) ?? 0, p50Ms: pct(50), p99Ms: pct(99) };
    }
    return out;
  }
}

export interface TraceReport {
  /** The last calls of the log (all of them when last is undefined). */
  calls: InvocationRecord[];
  /** Over every call in the log, not only those shown. */
  summary: Record<string, VerbSummary>;
}

/** The node's CNI calls from its invocation log (and the running summary, for following it). */
export function readTrace(logFile: string, last?: number): TraceReport & { running: TraceSummary } {
  const all = readInvocations(logFile);
  const running = new TraceSummary();
  for (const r of all) running.add(r);
  return { calls: last === undefined ? all : last ? all.slice(-last) : [], summary: running.get(), running };
}
