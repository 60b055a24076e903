// The text of `mncni lab list` (the data: src/lab/inventory.ts listLabs).
import type { LabEntry } from "../../lab/inventory.ts";
import { LAB_ROOT } from "../../lab/topology.ts";

export function formatLabList(labs: LabEntry[]): string {
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
