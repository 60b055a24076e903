// `mncni lab flows`: the policy verdict logs of a lab's nodes (each node's agent writes
// flows.log beside its agent.log), merged in time order; --node picks one.
import { say, sayJsonLine } from "./output.ts";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { requireState } from "../lab/state.ts";
import { nodePaths } from "../lab/topology.ts";
import type { FlowRecord } from "../agent/policy/flows.ts";
import { formatFlow } from "./flows.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";
import { UsageError, type CommandSpec, type FlagTable } from "./flags.ts";

const FLOWS = {
  name: "mncni lab flows",
  summary: "policy verdicts (denied flows, naming the policy) logged by the lab's agents",
  flags: { name: NAME, json: JSON_OUT, node: { type: "string", value: "NODE", help: "only this node's log" } },
  positionals: { max: 0 },
} satisfies CommandSpec<FlagTable>;

export async function cmdFlows(argv: string[]): Promise<number> {
  const p = parse(FLOWS, argv);
  if (typeof p === "number") return p;
  const s = requireState(p.flags.name);
  const nodes = s.nodes.filter((n) => !p.flags.node || n.name === p.flags.node);
  if (p.flags.node && nodes.length === 0) throw new UsageError(FLOWS.name, `no node "${p.flags.node}" in lab "${s.name}"`);
  const records: (FlowRecord & { node: string })[] = [];
  for (const n of nodes) {
    const file = join(nodePaths(s.name, n.name).dir, "flows.log");
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean)) {
      try {
        records.push({ ...(JSON.parse(line) as FlowRecord), node: n.name });
      } catch {
        // A line cut by a crash mid-write: skip it.
      }
    }
  }
  records.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  for (const r of records) p.flags.json ? sayJsonLine(r) : say(`${r.node.padEnd(8)} ${formatFlow(r, false)}`);
  if (!records.length && !p.flags.json) say("no verdicts logged (nothing denied yet)");
  return 0;
}
