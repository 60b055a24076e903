// The runtimeConfig capabilities mncni acts on besides `mac` and `ips` (those go to the
// veth and to IPAM): `portMappings` (hostPort) and `bandwidth`, validated into typed,
// frozen values so the mechanisms (host-port.ts, bandwidth.ts) never see raw JSON.
import { invalidConfig } from "../cni/errors.ts";
import { tryParseIP } from "../net/ip.ts";

export type PortProtocol = "tcp" | "udp" | "sctp";
const PROTOCOLS: readonly PortProtocol[] = ["tcp", "udp", "sctp"];

/** One runtimeConfig.portMappings entry, as the CNI conventions define it. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
  /** A specific host address to listen on; undefined: every local address. */
  hostIP?: string;
}

/** runtimeConfig.bandwidth: rates in bits per second, bursts in bits (as the reference plugin takes them). */
export interface Bandwidth {
  /** Traffic to the pod. */
  ingressRate?: number;
  ingressBurst?: number;
  /** Traffic from the pod. */
  egressRate?: number;
  egressBurst?: number;
}

/**
 * A key of a runtimeConfig object as Go's encoding/json finds it: exactly, else ignoring case.
 * containerd's go-cni sends its PortMapping and BandWidth structs untagged ("HostPort",
 * "IngressRate", ...), which the reference plugins (Go) read all the same.
 */
function key(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

const isPort = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;

export function parsePortMappings(raw: unknown): PortMapping[] {
  if (raw === undefined || raw === null) return [];
  const field = "runtimeConfig.portMappings";
  if (!Array.isArray(raw)) throw invalidConfig(field, `must be a list, got ${JSON.stringify(raw)}`);
  return raw.map((e: Record<string, unknown>, i) => {
    const at = `${field}[${i}]`;
    if (typeof e !== "object" || e === null) throw invalidConfig(at, `must be an object, got ${JSON.stringify(e)}`);
    const m = { hostPort: key(e, "hostPort"), containerPort: key(e, "containerPort"), protocol: key(e, "protocol"), hostIP: key(e, "hostIP") };
    if (!isPort(m.hostPort)) throw invalidConfig(`${at}.hostPort`, `${JSON.stringify(m.hostPort)} is not a port (1-65535)`);
    if (!isPort(m.containerPort)) throw invalidConfig(`${at}.containerPort`, `${JSON.stringify(m.containerPort)} is not a port (1-65535)`);
    const protocol = (typeof m.protocol === "string" && m.protocol !== "" ? m.protocol.toLowerCase() : "tcp") as PortProtocol;
    if (!PROTOCOLS.includes(protocol)) throw invalidConfig(`${at}.protocol`, `"${String(m.protocol)}" is not one of "tcp", "udp", "sctp"`);
    const out: PortMapping = { hostPort: m.hostPort, containerPort: m.containerPort, protocol };
    const hostIP = m.hostIP;
    if (hostIP !== undefined && hostIP !== "") {
      if (typeof hostIP !== "string" || !tryParseIP(hostIP)) throw invalidConfig(`${at}.hostIP`, `${JSON.stringify(hostIP)} is not an IP address`);
      // "0.0.0.0" and "::" stay: the unspecified address of one family means every address of that family.
      out.hostIP = hostIP;
    }
    return Object.freeze(out);
  });
}

/** The reference bandwidth plugin's bound on a bucket, in bytes (it refuses burst/8 >= 2^32-1). */
const MAX_BURST_BYTES = 0xffffffff;

const RATE_KEYS = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"] as const;

export function parseBandwidth(raw: unknown): Bandwidth | undefined {
  if (raw === undefined || raw === null) return undefined;
  const field = "runtimeConfig.bandwidth";
  if (typeof raw !== "object" || Array.isArray(raw)) throw invalidConfig(field, `must be an object, got ${JSON.stringify(raw)}`);
  const r = raw as Record<string, unknown>;
  const out: Bandwidth = {};
  for (const k of RATE_KEYS) {
    const v = key(r, k);
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw invalidConfig(`${field}.${k}`, `${JSON.stringify(v)} is not a non-negative integer`);
    if (v > 0) out[k] = v;
  }
  // A rate without a burst (or the reverse) cannot shape: the reference plugin refuses it too.
  for (const dir of ["ingress", "egress"] as const) {
    const rate = out[`${dir}Rate`];
    const burst = out[`${dir}Burst`];
    if ((rate === undefined) !== (burst === undefined)) {
      throw invalidConfig(`${field}.${dir}${rate === undefined ? "Rate" : "Burst"}`, `missing: ${dir}Rate and ${dir}Burst go together`);
    }
    // tbf takes its bucket in bytes as 32 bits: a larger one would wrap to a tiny bucket
    // that drops the pod's larger packets. The reference plugin's limit (burst/8 >= 2^32-1).
    if (burst !== undefined && Math.floor(burst / 8) >= MAX_BURST_BYTES) {
      throw invalidConfig(`${field}.${dir}Burst`, `${burst} bits is 4 GiB or more (at most ${MAX_BURST_BYTES * 8 - 1} bits)`);
    }
  }
  return out.ingressRate || out.egressRate ? Object.freeze(out) : undefined;
}
