// Validates NetworkPolicy v1 and ClusterNetworkPolicy v1alpha2 objects as the API server (or
// the CRD's schema) would, so an invalid policy is reported, naming the field, and never
// enforced half-understood. Rules from:
// - https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/network-policy-v1/
//   (ipBlock.except within cidr; endPort only with a numeric port, >= port; a peer sets
//   ipBlock alone or pod/namespace selectors; protocols TCP, UDP, SCTP)
// - github.com/kubernetes-sigs/network-policy-api apis/v1alpha2/clusternetworkpolicy_types.go
//   (tier Admin|Baseline, priority 0..1000, exactly one field in subject, peers, protocols
//   and ports; at most 25 rules, peers, protocols; range start < end; rule names <= 100).
import { compileSelector, SelectorError } from "./selector.ts";
import { cidrContains, normalizeCIDR } from "../net/cidr.ts";
import { familyOf } from "../net/ip.ts";
import { PROTOCOLS, type LabelSelector, type PolicyKind } from "./types.ts";

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

class FieldError extends Error {}

const fail = (field: string, value: unknown, cause: string): never => {
  throw new FieldError(`${field} ${JSON.stringify(value)}: ${cause}`);
};

function selector(field: string, v: unknown, required = false): void {
  if (v === undefined && !required) return;
  if (!isRecord(v)) fail(field, v, "must be a label selector object");
  try {
    compileSelector(v as LabelSelector);
  } catch (e) {
    if (e instanceof SelectorError) fail(field, v, e.message);
    throw e;
  }
}

function list(field: string, v: unknown, opts: { min?: number; max?: number } = {}): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(field, v, "must be a list");
  if (opts.min !== undefined && v.length < opts.min) fail(field, v, `must have at least ${opts.min} item(s)`);
  if (opts.max !== undefined && v.length > opts.max) fail(field, `(${v.length} items)`, `must have at most ${opts.max} items`);
  return v;
}

/** Validates a CIDR ("addr/len"; host bits may be set, as the API server accepts them). */
function cidr(field: string, v: unknown): string {
  if (typeof v !== "string") return fail(field, v, "must be a CIDR string");
  try {
    return normalizeCIDR(v);
  } catch (e) {
    return fail(field, v, (e as Error).message);
  }
}

function portNumber(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) fail(field, v, "must be an integer from 1 to 65535");
  return v as number;
}

const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function portName(field: string, v: unknown): void {
  if (typeof v !== "string" || v.length > 15 || !PORT_NAME.test(v) || !/[a-z]/.test(v) || v.includes("--")) {
    fail(field, v, "must be a port name (IANA_SVC_NAME: at most 15 lower-case alphanumerics or '-', with a letter)");
  }
}

function npPeer(field: string, v: unknown): void {
  if (!isRecord(v)) return void fail(field, v, "must be an object");
  const { ipBlock, podSelector, namespaceSelector } = v;
  if (ipBlock === undefined && podSelector === undefined && namespaceSelector === undefined) {
    fail(field, v, "must set ipBlock, podSelector or namespaceSelector");
  }
  if (ipBlock !== undefined) {
    if (podSelector !== undefined || namespaceSelector !== undefined) fail(field, v, "ipBlock may not be combined with podSelector or namespaceSelector");
    if (!isRecord(ipBlock)) return void fail(`${field}.ipBlock`, ipBlock, "must be an object with cidr");
    const outer = cidr(`${field}.ipBlock.cidr`, ipBlock.cidr);
    list(`${field}.ipBlock.except`, ipBlock.except).forEach((e, i) => {
      const inner = cidr(`${field}.ipBlock.except[${i}]`, e);
      const within = familyOf(inner) === familyOf(outer) && inner !== outer && cidrContains(outer, inner);
      if (!within) fail(`${field}.ipBlock.except[${i}]`, e, `must be strictly within cidr "${ipBlock.cidr}"`);
    });
  }
  selector(`${field}.podSelector`, podSelector);
  selector(`${field}.namespaceSelector`, namespaceSelector);
}

function npPort(field: string, v: unknown): void {
  if (!isRecord(v)) return void fail(field, v, "must be an object");
  if (v.protocol !== undefined && !(PROTOCOLS as readonly unknown[]).includes(v.protocol)) fail(`${field}.protocol`, v.protocol, `must be one of ${PROTOCOLS.join(", ")}`);
  if (typeof v.port === "string") {
    // An int-or-string port given as a quoted number is a number.
    if (/^[0-9]+$/.test(v.port)) portNumber(`${field}.port`, Number(v.port));
    else portName(`${field}.port`, v.port);
  } else if (v.port !== undefined) portNumber(`${field}.port`, v.port);
  if (v.endPort !== undefined) {
    const end = portNumber(`${field}.endPort`, v.endPort);
    if (v.port === undefined) fail(`${field}.endPort`, v.endPort, "may not be set without port");
    if (typeof v.port === "string" && !/^[0-9]+$/.test(v.port)) fail(`${field}.endPort`, v.endPort, "may not be set with a named port");
    if (end < Number(v.port)) fail(`${field}.endPort`, v.endPort, `must be greater than or equal to port ${v.port}`);
  }
}

function networkPolicySpec(spec: unknown): void {
  if (!isRecord(spec)) return void fail("spec", spec, "must be an object");
  selector("spec.podSelector", spec.podSelector, true);
  const types = list("spec.policyTypes", spec.policyTypes);
  types.forEach((t, i) => {
    if (t !== "Ingress" && t !== "Egress") fail(`spec.policyTypes[${i}]`, t, "must be Ingress or Egress");
  });
  for (const [dir, peers] of [["ingress", "from"], ["egress", "to"]] as const) {
    list(`spec.${dir}`, spec[dir]).forEach((r, i) => {
      const at = `spec.${dir}[${i}]`;
      if (!isRecord(r)) return void fail(at, r, "must be an object");
      list(`${at}.${peers}`, r[peers]).forEach((p, j) => npPeer(`${at}.${peers}[${j}]`, p));
      list(`${at}.ports`, r.ports).forEach((p, j) => npPort(`${at}.ports[${j}]`, p));
    });
  }
}

/** Exactly one of `keys` set in `v` (the CRD's MinProperties/MaxProperties = 1). */
function one(field: string, v: unknown, keys: readonly string[]): string {
  if (!isRecord(v)) return fail(field, v, `must be an object with one of ${keys.join(", ")}`);
  const set = Object.keys(v).filter((k) => v[k] !== undefined);
  const unknown = set.filter((k) => !keys.includes(k));
  if (unknown.length) fail(field, v, `unknown field ${unknown[0]} (expected one of ${keys.join(", ")})`);
  if (set.length !== 1) fail(field, v, `must set exactly one of ${keys.join(", ")}`);
  return set[0]!;
}

function namespacedPod(field: string, v: unknown): void {
  if (!isRecord(v)) return void fail(field, v, "must be an object with podSelector");
  selector(`${field}.namespaceSelector`, v.namespaceSelector);
  selector(`${field}.podSelector`, v.podSelector, true);
}

function cnpPort(field: string, v: unknown): void {
  const k = one(field, v, ["number", "range"]);
  const p = v as Record<string, unknown>;
  if (k === "number") return void portNumber(`${field}.number`, p.number);
  const r = p.range;
  if (!isRecord(r)) return void fail(`${field}.range`, r, "must be an object with start and end");
  const start = portNumber(`${field}.range.start`, r.start);
  const end = portNumber(`${field}.range.end`, r.end);
  if (start >= end) fail(`${field}.range`, r, "start must be less than end");
}

function cnpProtocol(field: string, v: unknown): void {
  const k = one(field, v, ["tcp", "udp", "sctp", "destinationNamedPort"]);
  const p = v as Record<string, unknown>;
  if (k === "destinationNamedPort") return void portName(`${field}.destinationNamedPort`, p.destinationNamedPort);
  const proto = p[k];
  if (!isRecord(proto)) return void fail(`${field}.${k}`, proto, "must be an object with destinationPort");
  if (proto.destinationPort === undefined) fail(`${field}.${k}`, proto, "must set destinationPort");
  cnpPort(`${field}.${k}.destinationPort`, proto.destinationPort);
}

function cnpPeer(field: string, v: unknown, egress: boolean): void {
  const k = one(field, v, egress ? ["namespaces", "pods", "nodes", "networks", "domainNames"] : ["namespaces", "pods"]);
  const p = v as Record<string, unknown>;
  if (k === "namespaces" || k === "nodes") selector(`${field}.${k}`, p[k], true);
  else if (k === "pods") namespacedPod(`${field}.pods`, p.pods);
  else if (k === "networks") list(`${field}.networks`, p.networks, { min: 1, max: 25 }).forEach((c, i) => cidr(`${field}.networks[${i}]`, c));
  else list(`${field}.domainNames`, p.domainNames, { min: 1, max: 25 }).forEach((d, i) => {
    if (typeof d !== "string" || d === "") fail(`${field}.domainNames[${i}]`, d, "must be a domain name");
  });
}

function clusterNetworkPolicySpec(spec: unknown): void {
  if (!isRecord(spec)) return void fail("spec", spec, "must be an object");
  if (spec.tier !== "Admin" && spec.tier !== "Baseline") fail("spec.tier", spec.tier, "must be Admin or Baseline");
  const pr = spec.priority;
  if (typeof pr !== "number" || !Number.isInteger(pr) || pr < 0 || pr > 1000) fail("spec.priority", pr, "must be an integer from 0 to 1000");
  const subject = one("spec.subject", spec.subject, ["namespaces", "pods"]);
  const s = spec.subject as Record<string, unknown>;
  if (subject === "namespaces") selector("spec.subject.namespaces", s.namespaces, true);
  else namespacedPod("spec.subject.pods", s.pods);
  for (const [dir, peers] of [["ingress", "from"], ["egress", "to"]] as const) {
    list(`spec.${dir}`, spec[dir], { max: 25 }).forEach((r, i) => {
      const at = `spec.${dir}[${i}]`;
      if (!isRecord(r)) return void fail(at, r, "must be an object");
      if (r.name !== undefined && (typeof r.name !== "string" || r.name.length > 100)) fail(`${at}.name`, r.name, "must be a string of at most 100 characters");
      if (r.action !== "Accept" && r.action !== "Deny" && r.action !== "Pass") fail(`${at}.action`, r.action, "must be Accept, Deny or Pass");
      if (r[peers] === undefined) fail(`${at}.${peers}`, r[peers], "is required");
      list(`${at}.${peers}`, r[peers], { min: 1, max: 25 }).forEach((p, j) => {
        cnpPeer(`${at}.${peers}[${j}]`, p, dir === "egress");
        if (isRecord(p) && p.domainNames !== undefined && r.action !== "Accept") fail(`${at}.${peers}[${j}].domainNames`, p.domainNames, "only allowed in Accept rules");
      });
      list(`${at}.protocols`, r.protocols, { min: 1, max: 25 }).forEach((p, j) => cnpProtocol(`${at}.protocols[${j}]`, p));
    });
  }
}

/** Why the policy object is invalid (naming the field), or undefined when it is valid. */
export function policyProblem(kind: PolicyKind, spec: unknown): string | undefined {
  try {
    if (kind === "NetworkPolicy") networkPolicySpec(spec);
    else clusterNetworkPolicySpec(spec);
    return undefined;
  } catch (e) {
    if (e instanceof FieldError) return e.message;
    throw e;
  }
}
