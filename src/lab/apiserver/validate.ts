// Validation answered with 422 and field paths: object names, the fields mncni reads (Node
// pod CIDRs, NetworkPolicy ports), required Pod containers, and custom resources against
// their CRD's structural schema (without its CEL rules: docs/lab.md).
import type { Kind, Obj } from "./kinds.ts";
import type { FieldCause } from "./status.ts";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const CIDR = /^[0-9a-fA-F.:]+\/\d+$/;

function metadata(k: Kind, o: Obj, out: FieldCause[]): void {
  const name = o.metadata?.name;
  if (!name) out.push({ field: "metadata.name", message: "Required value: name or generateName is required", reason: "FieldValueRequired" });
  else if (name.length > 253 || !(k.kind === "Namespace" ? DNS1123_LABEL : DNS1123_SUBDOMAIN).test(name)) {
    out.push({ field: "metadata.name", message: `Invalid value: "${name}": a lowercase RFC 1123 ${k.kind === "Namespace" ? "label" : "subdomain"} must consist of lower case alphanumeric characters, '-' or '.'` });
  }
  for (const [key, v] of Object.entries(o.metadata?.labels ?? {})) {
    if (typeof v !== "string" || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) out.push({ field: `metadata.labels`, message: `Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (key ${key})` });
  }
}

function node(old: Obj | undefined, o: Obj, out: FieldCause[]): void {
  const cidrs: string[] = o.spec?.podCIDRs ?? [];
  if (o.spec?.podCIDR && cidrs.length && o.spec.podCIDR !== cidrs[0]) out.push({ field: "spec.podCIDRs", message: "Invalid value: must equal spec.podCIDR as the first element" });
  if (cidrs.length > 2) out.push({ field: "spec.podCIDRs", message: "Too many: may specify no more than one CIDR for each IP family", reason: "FieldValueTooMany" });
  cidrs.forEach((c, i) => CIDR.test(c) || out.push({ field: `spec.podCIDRs[${i}]`, message: `Invalid value: "${c}": must be a valid CIDR value` }));
  const before: string[] = old?.spec?.podCIDRs ?? [];
  // ValidateNodeUpdate: pod CIDRs go from unset to set once and never change.
  if (before.length && JSON.stringify(before) !== JSON.stringify(cidrs)) out.push({ field: "spec.podCIDRs", message: "Forbidden: node updates may not change podCIDR except from \"\" to valid", reason: "FieldValueForbidden" });
}

function pod(o: Obj, out: FieldCause[]): void {
  const cs: any[] = o.spec?.containers ?? [];
  if (!cs.length) out.push({ field: "spec.containers", message: "Required value", reason: "FieldValueRequired" });
  cs.forEach((c, i) => {
    if (!c?.name) out.push({ field: `spec.containers[${i}].name`, message: "Required value", reason: "FieldValueRequired" });
    if (!c?.image) out.push({ field: `spec.containers[${i}].image`, message: "Required value", reason: "FieldValueRequired" });
    (c?.ports ?? []).forEach((p: any, j: number) => {
      if (p.name !== undefined && !(IANA_SVC_NAME.test(p.name) && p.name.length <= 15)) out.push({ field: `spec.containers[${i}].ports[${j}].name`, message: `Invalid value: "${p.name}": must be no more than 15 characters, lowercase alphanumerics and '-', with a letter` });
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) out.push({ field: `spec.containers[${i}].ports[${j}].containerPort`, message: `Invalid value: ${JSON.stringify(p.containerPort)}: must be between 1 and 65535, inclusive` });
    });
  });
}

function policyPorts(ports: any[], path: string, out: FieldCause[]): void {
  ports.forEach((p, i) => {
    const at = `${path}[${i}]`;
    if (p.protocol !== undefined && !["TCP", "UDP", "SCTP"].includes(p.protocol)) out.push({ field: `${at}.protocol`, message: `Unsupported value: "${p.protocol}": supported values: "SCTP", "TCP", "UDP"`, reason: "FieldValueNotSupported" });
    if (typeof p.port === "string" && !(IANA_SVC_NAME.test(p.port) && p.port.length <= 15)) out.push({ field: `${at}.port`, message: `Invalid value: "${p.port}": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), at least one letter, at most 15 characters` });
    if (typeof p.port === "number" && (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535)) out.push({ field: `${at}.port`, message: `Invalid value: ${p.port}: must be between 1 and 65535, inclusive` });
    if (p.endPort !== undefined) {
      if (typeof p.port !== "number") out.push({ field: `${at}.endPort`, message: "Forbidden: may not be specified when `port` is non-numeric", reason: "FieldValueForbidden" });
      else if (p.endPort < p.port) out.push({ field: `${at}.endPort`, message: `Invalid value: ${p.endPort}: must be greater than or equal to \`port\`` });
    }
  });
}

function networkPolicy(o: Obj, out: FieldCause[]): void {
  if (o.spec?.podSelector === undefined) out.push({ field: "spec.podSelector", message: "Required value", reason: "FieldValueRequired" });
  (o.spec?.ingress ?? []).forEach((r: any, i: number) => policyPorts(r.ports ?? [], `spec.ingress[${i}].ports`, out));
  (o.spec?.egress ?? []).forEach((r: any, i: number) => policyPorts(r.ports ?? [], `spec.egress[${i}].ports`, out));
  for (const t of o.spec?.policyTypes ?? []) if (!["Ingress", "Egress"].includes(t)) out.push({ field: "spec.policyTypes", message: `Unsupported value: "${t}": supported values: "Ingress", "Egress"`, reason: "FieldValueNotSupported" });
}

const typeOk: Record<string, (v: unknown) => boolean> = {
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
  array: Array.isArray,
  string: (v) => typeof v === "string",
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === "number",
  boolean: (v) => typeof v === "boolean",
};

/** The structural-schema keywords CRDs use, field by field (no CEL, no formats). */
function schema(s: Record<string, any>, v: any, path: string, out: FieldCause[]): void {
  if (v === undefined || v === null) return;
  if (s.type && !typeOk[s.type]?.(v)) {
    out.push({ field: path, message: `Invalid value: "${typeof v}": ${path} in body must be of type ${s.type}: "${typeof v}"`, reason: "FieldValueTypeInvalid" });
    return;
  }
  if (s.enum && !s.enum.includes(v)) out.push({ field: path, message: `Unsupported value: ${JSON.stringify(v)}: supported values: ${s.enum.map((e: unknown) => JSON.stringify(e)).join(", ")}`, reason: "FieldValueNotSupported" });
  if (typeof v === "number") {
    if (s.minimum !== undefined && v < s.minimum) out.push({ field: path, message: `Invalid value: ${v}: ${path} in body should be greater than or equal to ${s.minimum}` });
    if (s.maximum !== undefined && v > s.maximum) out.push({ field: path, message: `Invalid value: ${v}: ${path} in body should be less than or equal to ${s.maximum}` });
  }
  if (typeof v === "string" && s.maxLength !== undefined && v.length > s.maxLength) out.push({ field: path, message: `Too long: may not be more than ${s.maxLength} bytes`, reason: "FieldValueTooLong" });
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) out.push({ field: path, message: `Invalid value: ${v.length}: ${path} in body should have at least ${s.minItems} items` });
    if (s.maxItems !== undefined && v.length > s.maxItems) out.push({ field: path, message: `Too many: ${v.length}: must have at most ${s.maxItems} items`, reason: "FieldValueTooMany" });
    if (s.items) v.forEach((x, i) => schema(s.items, x, `${path}[${i}]`, out));
  }
  if (typeOk.object!(v)) {
    const n = Object.keys(v).length;
    if (s.minProperties !== undefined && n < s.minProperties) out.push({ field: path, message: `Invalid value: ${n}: ${path} in body should have at least ${s.minProperties} properties` });
    if (s.maxProperties !== undefined && n > s.maxProperties) out.push({ field: path, message: `Invalid value: ${n}: ${path} in body should have at most ${s.maxProperties} properties` });
    for (const r of s.required ?? []) if (v[r] === undefined) out.push({ field: `${path}.${r}`, message: "Required value", reason: "FieldValueRequired" });
    for (const [k, x] of Object.entries(v)) {
      const sub = s.properties?.[k] ?? (typeof s.additionalProperties === "object" ? s.additionalProperties : undefined);
      if (sub) schema(sub, x, `${path}.${k}`, out);
    }
  }
}

/** The invalid fields of an object about to be stored (empty: valid). */
export function validate(k: Kind, old: Obj | undefined, o: Obj): FieldCause[] {
  const out: FieldCause[] = [];
  metadata(k, o, out);
  if (k.kind === "Node") node(old, o, out);
  if (k.kind === "Pod") pod(o, out);
  if (k.kind === "NetworkPolicy") networkPolicy(o, out);
  if (k.custom) {
    const { metadata: _m, ...rest } = k.custom.schema.properties ?? {};
    schema({ ...k.custom.schema, properties: rest, required: (k.custom.schema.required ?? []).filter((r: string) => r !== "metadata") }, o, "", out);
    for (const c of out) c.field = c.field.replace(/^\./, "");
  }
  return out;
}
