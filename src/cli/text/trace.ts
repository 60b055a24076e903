// The text of `mncni trace`: one line per CNI call, and the summary table (the data:
// src/obs/trace.ts).
import type { InvocationRecord } from "../../cni/invocation-log.ts";
import type { VerbSummary } from "../../obs/trace.ts";
import { dim, green, oneLine, red, table } from "./render.ts";

export function formatCall(r: InvocationRecord): string {
  // Every field is what a runtime passed or a plugin wrote: one line each, controls escaped.
  const pod = oneLine(r.podName ? `${r.podNamespace ?? "?"}/${r.podName}` : (r.containerId ?? "-"));
  const result = r.outcome === "ok" ? green(oneLine(`ok ${r.ips?.join(",") ?? ""}`.trim())) : red(oneLine(`error ${r.code ?? ""}: ${r.msg ?? ""}`));
  return `${oneLine(r.time)}  ${oneLine(r.command).padEnd(6)} ${pod.padEnd(28)} ${`${r.durationMs.toFixed(1)}ms`.padStart(9)}  ${result}${r.plugin !== "mncni" ? dim(oneLine(` (${r.plugin})`)) : ""}`;
}

export function formatSummary(s: Record<string, VerbSummary>): string {
  const rows = Object.entries(s).map(([verb, v]) => [verb, String(v.calls), v.errors ? red(String(v.errors)) : "0", v.p50Ms.toFixed(1), v.p99Ms.toFixed(1)]);
  return rows.length ? table(["VERB", "CALLS", "ERRORS", "P50 MS", "P99 MS"], rows) : "no CNI calls";
}
