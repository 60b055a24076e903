// `mncni lab list`: the labs on this machine (src/lab/inventory.ts), as a table or --json.
import { sayJson, sayRendered } from "./output.ts";
import { listLabs } from "../lab/inventory.ts";
import { formatLabList } from "./text/lab-list.ts";
import { LAB_ROOT } from "../lab/topology.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, parse } from "./lab-common.ts";

const LIST = {
  name: "mncni lab list",
  summary: `The labs on this machine: under ${LAB_ROOT} ($MNCNI_LAB_ROOT), under the default root, and labs found only by their namespaces.`,
  flags: { json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

export async function cmdList(argv: string[]): Promise<number> {
  const p0 = parse(LIST, argv);
  if (typeof p0 === "number") return p0;
  const labs = listLabs();
  if (p0.flags.json) sayJson(labs);
  else sayRendered(labs, formatLabList);
  return 0;
}
