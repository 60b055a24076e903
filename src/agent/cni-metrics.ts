// What the agent's /metrics says about CNI calls and the IPAM: call durations per verb and
// outcome (from the invocation log, which every call writes whether the agent served it or
// the plugin ran it alone), and addresses used/free per range of the conflist in use.
import type { InvocationRecord } from "../cni/invocation-log.ts";
import { followInvocations } from "../cni/log-reader.ts";
import { nodeView } from "../cni/node-view.ts";
import { DiskStore } from "../ipam/disk-store.ts";
import { rangeUsage, type RangeUse } from "../ipam/usage.ts";

/** Seconds: a served call takes ~1 ms, a cold plugin process tens, a stuck lock seconds. */
export const CNI_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Range usage of the mncni conflist in confDir, from its IPAM directory. */
export function ipamUsage(confDir: string): RangeUse[] {
  const v = nodeView({ name: "", confDir });
  if (v.ipam === undefined) return [];
  return rangeUsage(v.ipam, new DiskStore(v.dataDir, v.network).list().reservations.map((r) => r.ip));
}

/** Feeds every call appended to the log from now on to observe; returns the stop function. */
export function watchCalls(logFile: string, observe: (verb: string, outcome: string, seconds: number) => void): () => void {
  return followInvocations(logFile, (recs: InvocationRecord[]) => {
    for (const r of recs) if (r.plugin === "mncni") observe(r.command, r.outcome, r.durationMs / 1000);
  }, { intervalMs: 1000 });
}
