// `mncni lab flows`: the policy verdict logs of a lab's nodes (each node's agent writes
// flows.log beside its agent.log), merged in time order; --node picks one.
import { say, sayJsonLine } from "./output.ts";
import { requireState } from "../lab/state.ts";
import { labFlows } from "../lab/flows.ts";
import { formatFlow } from "./text/flows.ts";
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
  if (p.flags.node && !s.nodes.some((n) => n.name === p.flags.node)) throw new UsageError(FLOWS.name, `no node "${p.flags.node}" in lab "${s.name}"`);
  const records = labFlows(s, p.flags.node);
  for (const r of records) p.flags.json ? sayJsonLine(r) : say(`${r.node.padEnd(8)} ${formatFlow(r)}`);
  if (!records.length && !p.flags.json) say("no verdicts logged (nothing denied yet)");
  return 0;
}
