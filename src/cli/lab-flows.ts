// `mncni lab flows`: the policy verdict logs of a lab's nodes (each node's agent writes
// flows.log beside its agent.log), merged, printed as `mncni flows` prints one node's
// (filters, --follow, --json); --node picks one.
import { requireState } from "../lab/state.ts";
import { followLabFlows, labFlows } from "../lab/flows.ts";
import { FLOW_FILTER_FLAGS, flowFilter, printFlows } from "./flows.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";
import { UsageError, type CommandSpec, type FlagTable } from "./flags.ts";

const FLOWS = {
  name: "mncni lab flows",
  summary: "policy verdicts (denied flows, naming the policy) logged by the lab's agents, one row per flow with its packet count",
  flags: {
    name: NAME,
    json: JSON_OUT,
    node: { type: "string", value: "NODE", help: "only this node's log" },
    follow: { type: "boolean", short: "f", help: "keep printing new flows as they come" },
    ...FLOW_FILTER_FLAGS,
  },
  positionals: { max: 0 },
} satisfies CommandSpec<FlagTable>;

export async function cmdFlows(argv: string[]): Promise<number> {
  const p = parse(FLOWS, argv);
  if (typeof p === "number") return p;
  const s = requireState(p.flags.name);
  if (p.flags.node && !s.nodes.some((n) => n.name === p.flags.node)) throw new UsageError(FLOWS.name, `no node "${p.flags.node}" in lab "${s.name}"`);
  // Read once, the nodes' logs are merged in time order (--json prints them so).
  const source = (onRecords: (rs: ReturnType<typeof labFlows>) => void, o: { follow: boolean }) =>
    o.follow ? followLabFlows(s, p.flags.node, onRecords, o) : (onRecords(labFlows(s, p.flags.node)), () => {});
  return printFlows(source, { follow: p.flags.follow, json: p.flags.json, filter: flowFilter(p.flags), withNode: true });
}
