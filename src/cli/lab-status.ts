// `mncni lab status`: what a lab is made of, checked against the kernel (src/lab/status.ts).
import { sayJson, sayRendered } from "./output.ts";
import { requireState } from "../lab/state.ts";
import { labStatus } from "../lab/status.ts";
import { formatLabStatus } from "./text/lab-status.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";

const STATUS = {
  name: "mncni lab status",
  summary: "Nodes, pods, the external host and directories of a lab, checked against the kernel.",
  flags: { name: NAME, json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

export async function cmdStatus(argv: string[]): Promise<number> {
  const p0 = parse(STATUS, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const st = await labStatus(requireState(v.name));
  if (v.json) sayJson(st);
  else sayRendered(st, formatLabStatus);
  return 0;
}
