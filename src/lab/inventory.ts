// What labs exist on this machine, and what a lab has that its state file does not list.
// The state file is the lab's record, but a command killed between creating a namespace and
// saving the state (or a state written by an older command) can miss things; `down` then
// finds them by the names the lab gives them.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { listNetns } from "./sh.ts";
import type { LabState } from "./state.ts";
import { DEFAULT_LAB_ROOT, LAB_ROOT, ns } from "./topology.ts";

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
      const s = JSON.parse(readFileSync(join(root, name, "state.json"), "utf8")) as LabState;
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
 * Labs under this process's root and the default root, and labs known only by their switch
 * namespace (<name>-sw): created under another MNCNI_LAB_ROOT, or with their state removed.
 */
export function listLabs(): LabEntry[] {
  const roots = [...new Set([LAB_ROOT, DEFAULT_LAB_ROOT])];
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

/**
 * Namespaces named like the lab's (<lab>-...) that the state does not list, except those of
 * another lab whose name extends this one (lab "a" must not take lab "a-b"'s namespaces).
 */
export function strayNamespaces(lab: string, listed: string[]): string[] {
  const others = listLabs().map((l) => l.name).filter((n) => n !== lab && n.startsWith(`${lab}-`));
  return listNetns().filter((n) => n.startsWith(`${lab}-`) && !listed.includes(n) && !others.some((o) => n.startsWith(`${o}-`)));
}
