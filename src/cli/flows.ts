// `mncni flows`: the policy verdict log of this node (the agent writes it, JSON lines; see
// docs/policy.md), as a table of flows (repeated packets of one flow counted in one row) or as
// the JSON lines, filtered, optionally following new ones. `mncni lab flows` prints the same
// way (printFlows, FLOW_FILTER_FLAGS). Reading: src/obs/flows.ts; rows: cli/text/flows.ts.
import { say, sayError, sayJsonLine, sayRendered } from "./output.ts";
import { existsSync } from "node:fs";
import { aggregateFlows, byTime, clusterNodeNames, FlowAggregator, flowMatches, followFlows, ownNodeNames, parsePodRef, podRefProblem, withNodeNames, type FlowFilter, type FlowRow, type ShownFlowRecord } from "../obs/flows.ts";
import { flowHeader, formatFlowRow } from "./text/flows.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";
import { nodeName } from "./node-flags.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { inClusterSource } from "../kube/index.ts";

/** The filters both `mncni flows` and `mncni lab flows` take. */
export const FLOW_FILTER_FLAGS = {
  pod: { type: "string", value: "NS/NAME", check: podRefProblem, help: "only flows from or to this pod" },
  namespace: { type: "string", value: "NS", help: "only flows from or to a pod of this namespace" },
  verdict: { type: "string", value: "VERDICT", choices: ["allow", "deny"], help: "only allowed (logged with the agent's --policy-log-accepts) or denied flows" },
} as const;

export function flowFilter(f: { pod?: string; namespace?: string; verdict?: string }): FlowFilter {
  return { ...(f.pod ? { pod: parsePodRef(f.pod) } : {}), ...(f.namespace ? { namespace: f.namespace } : {}), ...(f.verdict ? { verdict: f.verdict as "allow" | "deny" } : {}) };
}

/** Where records come from: called with each batch (the whole log first, then what is appended); returns a stop function. */
export type FlowSource<R extends ShownFlowRecord> = (onRecords: (records: R[]) => void, o: { follow: boolean }) => () => void;

/**
 * Prints the records that pass the filter: --json one line per record; text a header and one
 * row per flow. Following, a row is printed once its flow has been quiet for the aggregation
 * window (so that its count is final), until interrupted.
 */
export async function printFlows<R extends ShownFlowRecord & { node?: string }>(
  source: FlowSource<R>,
  o: { follow: boolean; json: boolean; filter: FlowFilter; withNode: boolean },
): Promise<number> {
  const keep = (rs: R[]) => rs.filter((r) => flowMatches(r, o.filter));
  const extraKey = (r: R) => r.node ?? "";
  const show = (rows: FlowRow<R>[]) => rows.forEach((row) => sayRendered(row, formatFlowRow));
  if (o.json) {
    source((rs) => keep(rs).forEach((r) => sayJsonLine(r)), o);
  } else if (!o.follow) {
    const all: R[] = [];
    source((rs) => all.push(...keep(rs)), o);
    say(flowHeader(o.withNode));
    show(aggregateFlows(all, extraKey));
    if (!all.length) say(o.filter.pod || o.filter.namespace || o.filter.verdict ? "(no logged verdict matches the filters)" : "(no verdicts logged: nothing denied yet)");
  } else {
    say(flowHeader(o.withNode));
    // Rows closed by a read wait for the next tick, so that each tick prints in time order.
    const agg = new FlowAggregator<R>(extraKey);
    const closed: FlowRow<R>[] = [];
    source((rs) => keep(rs).forEach((r) => closed.push(...agg.add(r))), o);
    const tick = () => show(byTime([...closed.splice(0), ...agg.due(Date.now())]));
    tick();
    setInterval(tick, 500);
  }
  if (o.follow) await new Promise(() => {}); // until interrupted
  return 0;
}

const SPEC = {
  name: "mncni flows",
  summary: "show the policy verdict log of this node (denied flows, and accepted ones when the agent logs them), one row per flow with its packet count",
  flags: {
    file: { type: "string", value: "FILE", default: "/var/log/mncni/flows.log", help: "the agent's --flow-log" },
    follow: { type: "boolean", short: "f", help: "keep printing new flows as they come" },
    json: { type: "boolean", help: "one JSON line per logged packet (as written, a node's address named by the node)" },
    source: { type: "string", value: "SPEC", help: "the cluster source the agent reads (as its --source: kubernetes[:KUBECONFIG], dir:PATH): other nodes' addresses are named by their Node objects (default in the agent's pod: kubernetes, its service account)" },
    ...FLOW_FILTER_FLAGS,
  },
  positionals: { max: 0 },
} satisfies CommandSpec<FlagTable>;

export async function flowsCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(SPEC, argv);
  if (typeof p === "number") return p;
  const { file, follow, json } = p.flags;
  if (!existsSync(file) && !follow) {
    sayError(`mncni flows: no verdict log at "${file}" yet (nothing was denied, or the agent writes elsewhere: --file)`);
    return 1;
  }
  const names = await nodeNames(p.flags.source);
  const source: FlowSource<ShownFlowRecord> = (onRecords, o) =>
    followFlows(file, (lines) => {
      // A malformed line is shown as it is (escaped, as all text).
      for (const l of lines) if ("malformed" in l) say(l.malformed);
      onRecords(lines.flatMap((l) => ("record" in l ? [withNodeNames(l.record, names)] : [])));
    }, o);
  return printFlows(source, { follow, json, filter: flowFilter(p.flags), withNode: false });
}

/**
 * Node addresses -> names: every Node's InternalIPs from the cluster source (--source; in the
 * agent's pod the in-cluster service account by default), then this node's own addresses (as
 * `mncni status` names it). A source that cannot be read leaves other nodes by address, said once.
 */
async function nodeNames(spec: string | undefined): Promise<ReadonlyMap<string, string>> {
  const own = ownNodeNames(nodeName());
  const source = spec ?? (inClusterSource() ? "kubernetes" : undefined);
  if (!source) return own;
  try {
    return new Map([...clusterNodeNames(await readClusterState(source)), ...own]);
  } catch (e) {
    sayError(`mncni flows: cannot read the Node objects from "${source}" (${(e as Error).message}): other nodes are shown by address`);
    return own;
  }
}
