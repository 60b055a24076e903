// What labs exist on this machine, and what a lab has that its state file does not list.
// The state file is the lab's record, but a command killed between creating a namespace and
// saving the state (or a state written by an older command) can miss things; `down` then
// finds them by the names the lab gives them.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cmdline, listNetns } from "./sh.ts";
import { DEFAULT_LAB_ROOT, LAB_ROOT, ns } from "./topology.ts";

/**
 * What the listing reads of a lab's state file (state.ts LabState, which reads this list for
 * its "cannot find lab" message): only these fields, which older state files have too.
 */
interface StateSummary {
  nodes: { pods: unknown[] }[];
  options: { mode: string; wiring: string };
  complete?: boolean;
}

export interface LabEntry {
  name: string;
  /** The MNCNI_LAB_ROOT it lives under; null when only its namespaces were found. */
  root: string | null;
  /** Under the root this process uses (MNCNI_LAB_ROOT), so commands reach it as they are. */
  current: boolean;
  nodes?: number;
  pods?: number;
  mode?: string;
  wiring?: string;
  /** false while `up` runs or after it was interrupted. */
  complete?: boolean;
  /** The state file could not be read. */
  error?: string;
}

function labsUnder(root: string): LabEntry[] {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => existsSync(join(root, n, "state.json")));
  } catch {
    return [];
  }
  return names.sort().map((name) => {
    const base = { name, root, current: root === LAB_ROOT };
    try {
      const s = JSON.parse(readFileSync(join(root, name, "state.json"), "utf8")) as StateSummary;
      return {
        ...base,
        nodes: s.nodes.length,
        pods: s.nodes.reduce((a, n) => a + n.pods.length, 0),
        mode: s.options.mode,
        wiring: s.options.wiring,
        complete: s.complete !== false,
      };
    } catch (e) {
      return { ...base, error: (e as Error).message };
    }
  });
}

/**
 * Roots of labs whose agents run, read from the agents' command lines
 * (`--cni-conf-dir <root>/<lab>/nodes/<node>/net.d`): how a lab made under another
 * MNCNI_LAB_ROOT is found. (A static-wiring lab runs no agent: found by its namespaces only.)
 */
function rootsOfRunningAgents(): string[] {
  const roots = new Set<string>();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const m = /--cni-conf-dir (\/\S+)\/[a-z0-9-]+\/nodes\/[^/\s]+\/net\.d/.exec(cmdline(Number(pid)));
    if (m) roots.add(m[1]!);
  }
  return [...roots];
}

/**
 * Labs under this process's root, the default root and the roots of running agents, and
 * labs known only by their switch namespace (<name>-sw): made under another MNCNI_LAB_ROOT
 * without agents, or with their state removed.
 */
export function listLabs(): LabEntry[] {
  const roots = [...new Set([LAB_ROOT, DEFAULT_LAB_ROOT, ...rootsOfRunningAgents()])];
  const found = roots.flatMap(labsUnder);
  const known = new Set(found.map((l) => l.name));
  const nets = listNetns();
  const orphans = nets
    .filter((n) => n.endsWith("-sw"))
    .map((n) => n.slice(0, -"-sw".length))
    .filter((name) => !known.has(name) && nets.includes(ns.router(name)))
    .sort()
    .map((name) => ({ name, root: null, current: false }));
  return [...found, ...orphans];
}

/** Where a lab lives when not under this process's root (null: here, or nowhere found). */
export function elsewhere(lab: string): string | null {
  return listLabs().find((l) => l.name === lab && l.root !== null && !l.current)?.root ?? null;
}

/**
 * Namespaces named like the lab's (<lab>-...) that the state does not list, except those of
 * another lab whose name extends this one (lab "a" must not take lab "a-b"'s namespaces).
 */
export function strayNamespaces(lab: string, listed: string[]): string[] {
  const others = listLabs().map((l) => l.name).filter((n) => n !== lab && n.startsWith(`${lab}-`));
  return listNetns().filter((n) => n.startsWith(`${lab}-`) && !listed.includes(n) && !others.some((o) => n.startsWith(`${o}-`)));
}
