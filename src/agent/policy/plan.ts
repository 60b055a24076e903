// nft scripts for the policy table, pure: the whole table (first write, or when the kernel's
// copy is not the one this agent knows), and the change from one structure to the next, each
// one atomic transaction. Element-only changes do not come here: the engine writes them over
// netlink. The marker rule's comment carries the structure's hash, so an agent that starts
// against a table with this structure adopts it (and corrects only elements) instead of
// rewriting it, and never flushes the rules in force.
import { type ChainDef, type PolicyStructure, type SetDef, describeSet, POLICY_FAMILY, POLICY_MARKER, POLICY_TABLE, setType } from "./compile.ts";
import type { ElementDelta } from "./members.ts";

export const T = `${POLICY_FAMILY} ${POLICY_TABLE}`;
export const MARKER_CHAIN = "marker";

/** A map element's key (deletions name the key alone). */
export const elementKey = (e: string) => e.split(" : ")[0]!;

const markerRule = (hash: string) => `counter comment "${POLICY_MARKER}${hash}"`;

/** The hash in the marker rule of a listed table (terse listing: no elements needed). */
export function installedHash(rules: readonly { family: string; table: string; comment?: string }[]): string | undefined {
  const m = rules.find((r) => r.family === POLICY_FAMILY && r.table === POLICY_TABLE && r.comment?.startsWith(POLICY_MARKER));
  return m?.comment?.slice(POLICY_MARKER.length);
}

function setDecl(name: string, def: SetDef, elements?: Iterable<string>): string {
  const t = setType(def);
  const els = elements ? [...elements] : [];
  const kind = t.verdict ? "map" : "set";
  const type = `type ${t.key.join(" . ")}${t.verdict ? " : verdict" : ""};`;
  return `${kind} ${name} { ${type} comment "${describeSet(def)}";${els.length ? ` elements = { ${els.join(", ")} };` : ""} }`;
}

const chainBody = (c: ChainDef) => `${c.hook ? `${c.hook} ` : ""}`;

/** The whole table, replacing whatever the kernel has under that name. */
export function tableScript(s: PolicyStructure, elements: ReadonlyMap<string, ReadonlyMap<string, number>>): string {
  const lines: string[] = [];
  for (const [name, def] of s.sets) lines.push(`  ${setDecl(name, def, elements.get(name)?.keys())}`);
  for (const [name, c] of s.chains) lines.push(`  chain ${name} {\n${c.hook ? `    ${c.hook}\n` : ""}${c.rules.map((r) => `    ${r}\n`).join("")}  }`);
  lines.push(`  chain ${MARKER_CHAIN} {\n    ${markerRule(s.hash)}\n  }`);
  return `table ${T} {}\ndelete table ${T}\ntable ${T} {\n${lines.join("\n")}\n}\n`;
}

/** Cached fragments hand out the same rule arrays: compared by reference first. */
const sameChain = (a: ChainDef, b: ChainDef) =>
  a.hook === b.hook && (a.rules === b.rules || (a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i])));

/**
 * From the structure in the kernel to the next, with the element changes of the sets both
 * have: deletions first (a dispatch element may point at a chain that goes), then new sets
 * and chains, flushed and removed chains, removed sets, rules, and the elements to add.
 */
export function deltaScript(prev: PolicyStructure, next: PolicyStructure, elements: ReadonlyMap<string, ReadonlyMap<string, number>>, delta: ElementDelta): { script: string; changes: string[] } {
  const out: string[] = [];
  const changes: string[] = [];
  for (const [name, d] of delta) if (prev.sets.has(name) && next.sets.has(name) && d.del.size) out.push(`delete element ${T} ${name} { ${[...d.del].map(elementKey).join(", ")} }`);
  const newSets = [...next.sets].filter(([n]) => !prev.sets.has(n));
  for (const [name, def] of newSets) out.push(`add ${setDecl(name, def, elements.get(name)?.keys())}`.replace(/^add (set|map) (\S+) \{/, `add $1 ${T} $2 {`));
  const newChains = [...next.chains].filter(([n]) => !prev.chains.has(n));
  for (const [name, c] of newChains) out.push(c.hook ? `add chain ${T} ${name} { ${chainBody(c)}}` : `add chain ${T} ${name}`);
  const changed = [...next.chains].filter(([n, c]) => prev.chains.has(n) && !sameChain(prev.chains.get(n)!, c));
  const gone = [...prev.chains.keys()].filter((n) => !next.chains.has(n));
  for (const [name] of changed) out.push(`flush chain ${T} ${name}`);
  for (const name of gone) out.push(`flush chain ${T} ${name}`);
  for (const name of gone) out.push(`delete chain ${T} ${name}`);
  const goneSets = [...prev.sets.keys()].filter((n) => !next.sets.has(n));
  for (const name of goneSets) out.push(`delete ${setType(prev.sets.get(name)!).verdict ? "map" : "set"} ${T} ${name}`);
  for (const [name, c] of [...newChains, ...changed]) for (const r of c.rules) out.push(`add rule ${T} ${name} ${r}`);
  for (const [name, d] of delta) if (prev.sets.has(name) && next.sets.has(name) && d.add.size) out.push(`add element ${T} ${name} { ${[...d.add].join(", ")} }`);
  out.push(`flush chain ${T} ${MARKER_CHAIN}`, `add rule ${T} ${MARKER_CHAIN} ${markerRule(next.hash)}`);
  const n = (k: number, what: string) => (k ? [`${k} ${what}${k === 1 ? "" : "s"}`] : []);
  changes.push(`update table ${T}: ${[...n(newChains.length, "chain"), ...n(changed.length, "changed chain"), ...n(gone.length, "removed chain"), ...n(newSets.length, "set"), ...n(goneSets.length, "removed set")].join(", ") || "elements"}`);
  return { script: out.join("\n") + "\n", changes };
}
