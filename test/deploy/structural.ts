// A strict structural check of generated objects against @kubernetes/client-node's model
// metadata (attributeTypeMap, generated from the upstream OpenAPI document): every field must
// exist in its model (the OpenAPI schemas themselves allow unknown fields, the API server
// drops or rejects them) and have the model's type.
import * as k8s from "@kubernetes/client-node";

type AttributeType = { name: string; baseName: string; type: string; format: string };
type Model = { getAttributeTypeMap(): AttributeType[] };

function model(name: string): Model {
  const m = (k8s as unknown as Record<string, Partial<Model>>)[name];
  if (typeof m?.getAttributeTypeMap !== "function") throw new Error(`no model "${name}" in @kubernetes/client-node`);
  return m as Model;
}

function check(value: unknown, type: string, path: string, errors: string[]): void {
  const array = /^Array<(.+)>$/.exec(type);
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  const kind = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  const want = (ok: boolean, what: string) => ok || errors.push(`${path}: expected ${what}, got ${kind} ${JSON.stringify(value)}`);
  if (type === "any") return;
  if (array) {
    if (want(Array.isArray(value), type) === true) (value as unknown[]).forEach((v, i) => check(v, array[1]!, `${path}[${i}]`, errors));
  } else if (map) {
    if (want(kind === "object", type) === true) for (const [k, v] of Object.entries(value as object)) check(v, map[1]!, `${path}.${k}`, errors);
  } else if (type === "string" || type === "Date") want(kind === "string", "string");
  else if (type === "number") want(kind === "number", "number");
  else if (type === "boolean") want(kind === "boolean", "boolean");
  else if (type === "IntOrString") want(kind === "string" || kind === "number", "int or string");
  else if (want(kind === "object", type) === true) checkModel(value as Record<string, unknown>, type, path, errors);
}

function checkModel(obj: Record<string, unknown>, name: string, path: string, errors: string[]): void {
  const attrs = new Map(model(name).getAttributeTypeMap().map((a) => [a.baseName, a]));
  for (const [key, value] of Object.entries(obj)) {
    const a = attrs.get(key);
    if (!a) errors.push(`${path}.${key}: unknown field of ${name}`);
    else check(value, a.type, `${path}.${key}`, errors);
  }
}

/** Errors of one top-level object, checked as the V1<kind> model; [] when it conforms. */
export function structuralErrors(obj: { kind?: string }): string[] {
  const errors: string[] = [];
  checkModel(obj as Record<string, unknown>, `V1${obj.kind}`, obj.kind ?? "?", errors);
  return errors;
}
