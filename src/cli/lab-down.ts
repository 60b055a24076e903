// `mncni lab down`: remove everything a lab created (the work: src/lab/lab.ts down()).
import { down } from "../lab/lab.ts";
import { progress } from "../lab/progress.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, QUIET, locked, parse } from "./lab-common.ts";

const DOWN = {
  name: "mncni lab down",
  summary: "Removes every namespace, process and file of the lab, also of a half-built one and what its state file missed (idempotent).",
  flags: { name: NAME, quiet: QUIET },
} satisfies CommandSpec<FlagTable>;

export async function cmdDown(argv: string[]): Promise<number> {
  const p0 = parse(DOWN, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const p = progress({ quiet: v.quiet });
  // No directory here, nothing to lock: a lab only its namespaces are left of (or another
  // root's) is not given a directory by its removal.
  const existed = await locked(v.name, false, () => down(v.name, p));
  p.done(existed ? `lab "${v.name}" removed` : `lab "${v.name}" not running: nothing to remove`);
  return 0;
}
