// Label selectors (metav1.LabelSelector) as the API server validates and evaluates them, for
// NetworkPolicy's podSelector and namespaceSelector. Semantics from the Kubernetes API docs:
// - https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
//   (requirements are ANDed; `NotIn` and `!=` also match objects without the key)
// - https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/
//   ("the requirements are ANDed"; values "must be non-empty" for In/NotIn and "must be empty"
//   for Exists/DoesNotExist; "An empty label selector matches all objects. A null label
//   selector matches no objects.")
// - https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
//   (key: optional DNS-subdomain prefix of at most 253 characters and "/", then a name of at
//   most 63 characters; value: at most 63 characters, may be empty)
// Where a NetworkPolicy peer leaves namespaceSelector out it means "the policy's own
// namespace", not "no namespace": that rule belongs to the policy code, which should then not
// call this with the absent selector.
import type { LabelSelector } from "./types.ts";

export type Labels = Readonly<Record<string, string>> | ReadonlyMap<string, string>;
export type LabelMatcher = (labels: Labels) => boolean;
export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

export class SelectorError extends Error {}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const OPERATORS: readonly SelectorOperator[] = ["In", "NotIn", "Exists", "DoesNotExist"];

/** Why `key` is not a valid label key, or undefined when it is. */
function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string" || key === "") return "must be a non-empty string";
  const slash = key.indexOf("/");
  const [prefix, name] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return "the prefix must be a DNS subdomain (lower case alphanumerics, '-', '.') of at most 253 characters";
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return "the name must be at most 63 characters: alphanumerics, '-', '_', '.', starting and ending with an alphanumeric";
  }
  return undefined;
}

function valueProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value === "") return undefined;
  if (value.length > 63 || !NAME.test(value)) return "must be at most 63 characters: alphanumerics, '-', '_', '.', starting and ending with an alphanumeric";
  return undefined;
}

const get = (labels: Labels, key: string): string | undefined =>
  labels instanceof Map ? labels.get(key) : Object.hasOwn(labels, key) ? (labels as Record<string, string>)[key] : undefined;

/**
 * Validates a selector the way the API server does (errors name the field, e.g.
 * `matchExpressions[0].operator`) and returns its matcher. null/undefined matches nothing.
 * Throws SelectorError on the first invalid field.
 */
export function compileSelector(sel: LabelSelector | null | undefined): LabelMatcher {
  if (sel === null || sel === undefined) return () => false;
  const fail = (field: string, value: unknown, cause: string): never => {
    throw new SelectorError(`cannot use selector field ${field} ${JSON.stringify(value)}: ${cause}`);
  };
  if (typeof sel !== "object" || Array.isArray(sel)) fail("selector", sel, "must be an object");
  const reqs: LabelMatcher[] = [];
  const matchLabels = sel.matchLabels ?? {};
  if (typeof matchLabels !== "object" || Array.isArray(matchLabels)) fail("matchLabels", matchLabels, "must be an object of key: value");
  for (const [key, value] of Object.entries(matchLabels)) {
    const kp = keyProblem(key);
    if (kp) fail("matchLabels key", key, kp);
    const vp = valueProblem(value);
    if (vp) fail(`matchLabels["${key}"]`, value, vp);
    reqs.push((l) => get(l, key) === value);
  }
  const exprs = sel.matchExpressions ?? [];
  if (!Array.isArray(exprs)) fail("matchExpressions", exprs, "must be a list");
  exprs.forEach((e, i) => {
    const at = `matchExpressions[${i}]`;
    if (typeof e !== "object" || e === null) fail(at, e, "must be an object with key and operator");
    const kp = keyProblem(e.key);
    if (kp) fail(`${at}.key`, e.key, kp);
    const op = e.operator as SelectorOperator;
    if (!OPERATORS.includes(op)) fail(`${at}.operator`, e.operator, `not a valid selector operator (${OPERATORS.join(", ")})`);
    const values = e.values ?? [];
    if (!Array.isArray(values)) fail(`${at}.values`, values, "must be a list of strings");
    const set = op === "In" || op === "NotIn";
    if (set && values.length === 0) fail(`${at}.values`, values, `must be specified when operator is ${op}`);
    if (!set && values.length > 0) fail(`${at}.values`, values, `may not be specified when operator is ${op}`);
    values.forEach((v, j) => {
      const vp = valueProblem(v);
      if (vp) fail(`${at}.values[${j}]`, v, vp);
    });
    const key = e.key;
    const allowed = new Set(values);
    reqs.push(
      op === "In" ? (l) => allowed.has(get(l, key) as string)
      : op === "NotIn" ? (l) => { const v = get(l, key); return v === undefined || !allowed.has(v); }
      : op === "Exists" ? (l) => get(l, key) !== undefined
      : (l) => get(l, key) === undefined,
    );
  });
  return (labels) => reqs.every((r) => r(labels));
}

/** Does `labels` satisfy `sel`? (null/undefined: no.) Throws SelectorError on an invalid selector. */
export function labelsMatch(sel: LabelSelector | null | undefined, labels: Labels): boolean {
  return compileSelector(sel)(labels);
}

/**
 * The names of the objects `sel` selects, as a Set (for namespaceSelector: which namespaces a
 * peer covers, then `set.has(pod.namespace)`). The selector is compiled once.
 */
export function selectNames(sel: LabelSelector | null | undefined, objects: Iterable<{ name: string; labels: Labels }>): Set<string> {
  const match = compileSelector(sel);
  const out = new Set<string>();
  for (const o of objects) if (match(o.labels)) out.add(o.name);
  return out;
}

/** A requirement of a selector that some labels do not satisfy: the requirement as kubectl writes it, and the labels' value of its key. */
export interface UnmetRequirement {
  /** "role=web", "tier in (a,b)", "tier notin (x)", "tier" (Exists), "!tier" (DoesNotExist). */
  requirement: string;
  key: string;
  /** The labels' value of the key; absent when they have none. */
  value?: string;
}

/**
 * The requirements of a (valid) selector that `labels` do not satisfy, in the selector's order:
 * empty when it matches. A null selector has no requirement and matches nothing: callers say so.
 */
export function unmetRequirements(sel: LabelSelector, labels: Labels): UnmetRequirement[] {
  const out: UnmetRequirement[] = [];
  const miss = (requirement: string, key: string) => {
    const value = get(labels, key);
    out.push({ requirement, key, ...(value !== undefined ? { value } : {}) });
  };
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) if (get(labels, key) !== value) miss(`${key}=${value}`, key);
  for (const e of sel.matchExpressions ?? []) {
    const v = get(labels, e.key);
    const values = e.values ?? [];
    if (e.operator === "In" && !(v !== undefined && values.includes(v))) miss(`${e.key} in (${values.join(",")})`, e.key);
    if (e.operator === "NotIn" && v !== undefined && values.includes(v)) miss(`${e.key} notin (${values.join(",")})`, e.key);
    if (e.operator === "Exists" && v === undefined) miss(e.key, e.key);
    if (e.operator === "DoesNotExist" && v !== undefined) miss(`!${e.key}`, e.key);
  }
  return out;
}

/** A selector as kubectl writes one ("role=web,tier in (a,b)"); "{}" (everything) for an empty one. */
export function selectorText(sel: LabelSelector): string {
  const parts = [
    ...Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(sel.matchExpressions ?? []).map((e) =>
      e.operator === "In" ? `${e.key} in (${(e.values ?? []).join(",")})`
      : e.operator === "NotIn" ? `${e.key} notin (${(e.values ?? []).join(",")})`
      : e.operator === "Exists" ? e.key
      : `!${e.key}`),
  ];
  return parts.length ? parts.join(",") : "{}";
}
