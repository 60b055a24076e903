// `mncni lab list`: the labs on this machine (src/lab/inventory.ts), as a table or --json.
import { say, sayJson } from "./output.ts";
import { listLabs, type LabEntry } from "../lab/inventory.ts";
import { LAB_ROOT } from "../lab/topology.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, parse } from "./lab-common.ts";

const LIST = {
  name: "mncni lab list",
  summary: `The labs on this machine: under ${LAB_ROOT} ($MNCNI_LAB_ROOT), under the default root, and labs found only by their namespaces.`,
  flags: { json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

function formatList(labs: LabEntry[]): string {
  if (labs.length === 0) return "no lab exists on this machine";
  const rows = labs.map((l) => [
    l.name,
    l.root ?? "? (namespaces only)",
    l.nodes === undefined ? "-" : String(l.nodes),
    l.pods === undefined ? "-" : String(l.pods),
    l.mode ?? "-",
    l.wiring ?? "-",
    l.error ? `unreadable: ${l.error}` : l.root === null ? "no state" : l.complete ? "complete" : "incomplete",
  ]);
  const header = ["NAME", "ROOT", "NODES", "PODS", "MODE", "WIRING", "STATE"];
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  const other = labs.filter((l) => l.root !== null && !l.current);
  return [
    fmt(header),
    ...rows.map(fmt),
    ...(other.length ? ["", `labs under another root are reached with MNCNI_LAB_ROOT=<root> (this command uses ${LAB_ROOT})`] : []),
    ...(labs.some((l) => l.root === null) ? ["labs with no state: their namespaces exist but no state file was found (another MNCNI_LAB_ROOT?)"] : []),
  ].join("\n");
}

export async function cmdList(argv: string[]): Promise<number> {
  const p0 = parse(LIST, argv);
  if (typeof p0 === "number") return p0;
  const labs = listLabs();
  if (p0.flags.json) sayJson(labs);
  else say(formatList(labs));
  return 0;
}
