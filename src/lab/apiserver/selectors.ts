// Label and field selectors of list and watch requests, in the query syntax clients send.
import type { Obj } from "./kinds.ts";

export type Match = (o: Obj) => boolean;

export class SelectorError extends Error {}

/** Splits at commas outside parentheses: "a in (x,y),b" is two requirements. */
function requirements(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function labelRequirement(r: string): Match {
  const labels = (o: Obj): Record<string, string> => o.metadata?.labels ?? {};
  let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(r);
  if (m) {
    const [, key, op, list] = m;
    const values = list!.split(",").map((v) => v.trim());
    return op === "in" ? (o) => values.includes(labels(o)[key!] as string) : (o) => !values.includes(labels(o)[key!] as string);
  }
  m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s!=]*)$/.exec(r);
  if (m) {
    const [, key, op, value] = m;
    return op === "!=" ? (o) => labels(o)[key!] !== value : (o) => labels(o)[key!] === value;
  }
  m = /^(!?)([^\s!=()]+)$/.exec(r);
  if (m) return m[1] ? (o) => !(m![2]! in labels(o)) : (o) => m![2]! in labels(o);
  throw new SelectorError(`unable to parse requirement: "${r}"`);
}

export function labelSelector(s: string | null): Match {
  const reqs = requirements(s ?? "").map(labelRequirement);
  return (o) => reqs.every((r) => r(o));
}

/** A dotted path of the object as text ("" when absent), as field selectors compare it. */
function fieldValue(o: Obj, path: string): string {
  let v: any = o;
  for (const p of path.split(".")) v = v?.[p];
  return v === undefined || v === null ? "" : String(v);
}

/**
 * Field selectors: `path=value`, `path==value`, `path!=value`. kube-apiserver allows only
 * the fields each kind indexes (metadata.name, spec.nodeName, status.phase, involvedObject.*);
 * this server accepts any dotted path (docs/lab.md).
 */
export function fieldSelector(s: string | null): Match {
  const reqs = requirements(s ?? "").map((r): Match => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(r);
    if (!m) throw new SelectorError(`invalid field selector: "${r}"`);
    const [, path, op, value] = m;
    return op === "!=" ? (o) => fieldValue(o, path!) !== value : (o) => fieldValue(o, path!) === value;
  });
  return (o) => reqs.every((r) => r(o));
}
