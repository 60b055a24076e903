// metav1.Status bodies, worded as kube-apiserver words them (clients match on reason and code).
import type { Kind, Obj } from "./kinds.ts";

export interface FieldCause {
  field: string;
  message: string;
  reason?: string;
}

export function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Obj {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code };
}

const what = (k: Kind): string => (k.group ? `${k.plural}.${k.group}` : k.plural);

export const notFound = (k: Kind, name: string): Obj =>
  status(404, "NotFound", `${what(k)} "${name}" not found`, { name, group: k.group || undefined, kind: k.plural });

export const alreadyExists = (k: Kind, name: string): Obj =>
  status(409, "AlreadyExists", `${what(k)} "${name}" already exists`, { name, group: k.group || undefined, kind: k.plural });

export const conflict = (k: Kind, name: string): Obj =>
  status(409, "Conflict", `Operation cannot be fulfilled on ${what(k)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: k.group || undefined, kind: k.plural });

/** 422 with one cause per field, as the real server lists them. */
export function invalid(k: Kind, name: string, causes: FieldCause[]): Obj {
  const list = causes.map((c) => `${c.field}: ${c.message}`).join(", ");
  return status(422, "Invalid", `${k.kind}${k.group ? `.${k.group}` : ""} "${name}" is invalid: ${causes.length > 1 ? `[${list}]` : list}`, {
    name, group: k.group || undefined, kind: k.kind,
    causes: causes.map((c) => ({ reason: c.reason ?? "FieldValueInvalid", message: c.message, field: c.field })),
  });
}

export const badRequest = (message: string): Obj => status(400, "BadRequest", message);

export const unknownPath = (): Obj => status(404, "NotFound", "the server could not find the requested resource");
