// `mncni lab trace <node>`: a lab node's CNI calls, as `mncni trace` on that node.
import { labNodeView } from "../lab/places.ts";
import { requireState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";
import { runTrace } from "./trace.ts";

const TRACE = {
  name: "mncni lab trace",
  args: "<node>",
  summary: "The CNI calls of a lab node (as `mncni trace` on that node).",
  flags: {
    name: NAME,
    json: JSON_OUT,
    follow: { type: "boolean", short: "f", help: "keep printing calls as they are made (Ctrl-C ends)" },
    last: { type: "int", value: "N", default: 50, min: 0, help: "calls shown from before" },
  },
  positionals: { min: 1, max: 1, names: ["node"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdTrace(argv: string[]): Promise<number> {
  const p = parse(TRACE, argv);
  if (typeof p === "number") return p;
  const v = labNodeView(requireState(p.flags.name), p.positionals[0]!);
  return runTrace(v.logFile, { follow: p.flags.follow, json: p.flags.json, last: p.flags.last });
}
