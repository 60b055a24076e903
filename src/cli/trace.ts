// `mncni trace [--follow]`: the invocation log, one line per CNI call, and a summary per verb.
import { say, sayJsonLine, sayRendered } from "./output.ts";
import { followInvocations } from "../cni/log-reader.ts";
import type { InvocationRecord } from "../cni/invocation-log.ts";
import { readTrace } from "../obs/trace.ts";
import { formatCall, formatSummary } from "./text/trace.ts";
import { parseOrExit, type CommandSpec } from "./flags.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";

const TRACE_FLAGS = {
  ...NODE_FLAGS,
  follow: { type: "boolean", short: "f", help: "keep printing calls as they are made, with the running summary (Ctrl-C ends)" },
  last: { type: "int", value: "N", default: 50, min: 0, help: "calls shown from before (0: only new ones with --follow)" },
} as const;

const TRACE = {
  name: "mncni trace",
  summary: "The CNI calls of this node from the invocation log: time, verb, pod, duration, result or error; then calls, errors and p50/p99 per verb. --json prints one JSON object per call and a final summary object.",
  flags: TRACE_FLAGS,
} satisfies CommandSpec<typeof TRACE_FLAGS>;

export async function traceCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(TRACE, argv);
  if (typeof p === "number") return p;
  return runTrace(viewFromFlags(p.flags).logFile, p.flags);
}

/** Shared with `mncni lab trace`. */
export async function runTrace(logFile: string, o: { follow: boolean; json: boolean; last: number }): Promise<number> {
  const { calls, running: summary } = readTrace(logFile, o.last);
  const show = (r: InvocationRecord) => {
    summary.add(r);
    if (o.json) sayJsonLine({ call: r });
    else sayRendered(r, formatCall);
  };
  for (const r of calls) o.json ? sayJsonLine({ call: r }) : sayRendered(r, formatCall);
  const printSummary = () => (o.json ? sayJsonLine({ summary: summary.get() }) : sayRendered(summary.get(), (s) => `\n${formatSummary(s)}\n`));
  if (!o.follow) {
    if (o.json) printSummary();
    else sayRendered(summary.get(), (s) => `\n${formatSummary(s)}`);
    return 0;
  }
  if (!o.json) say(`-- following ${logFile} (Ctrl-C ends) --`);
  let sinceSummary = 0;
  const stop = followInvocations(logFile, (recs) => {
    for (const r of recs) show(r);
    sinceSummary += recs.length;
    // The summary every 20 calls keeps a busy node readable; the final one comes at the end.
    if (sinceSummary >= 20) {
      sinceSummary = 0;
      printSummary();
    }
  });
  await new Promise<void>((res) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => res());
  });
  stop();
  printSummary();
  return 0;
}
