// `mncni controller` flags -> a frozen, validated config. Pure: no files read, no network.
import type { FamilyPool } from "./cidr-allocator.ts";
import { type Family, familyOf } from "../net/ip.ts";
import { normalizeCIDR } from "../net/cidr.ts";
import { HELP, helpText, parseFlags, type CommandSpec, type FlagTable } from "../base/flags.ts";
import { CONTROLLER_HEALTH_PORT } from "../base/ports.ts";
import { DEFAULT_MAX_ENDPOINTS_PER_SLICE, MAX_ENDPOINTS_PER_SLICE } from "../cluster/index.ts";

export interface ControllerConfig {
  pools: FamilyPool[];
  kubeconfig?: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  identity: string;
  /** "host:port", or undefined for off. */
  metricsAddr?: string;
  /** Node patches in flight at once. */
  workers: number;
  /** Also the endpoint-slice controller (clusters without kube-controller-manager's; the lab). */
  endpointSlices: boolean;
  /** With endpointSlices: the most endpoints one EndpointSlice holds. */
  maxEndpointsPerSlice: number;
  logLevel: "debug" | "info" | "warn" | "error";
  logFile?: string;
}

export class ConfigError extends Error {}

const DURATION = (s: string) => (/^(\d+(?:\.\d+)?)(ms|s|m)$/.test(s) ? null : "expected a duration such as 15s or 500ms");

/** The flags of `mncni controller`, on the CLI's one parser (src/base/flags.ts). */
const CONTROLLER_COMMAND = {
  name: "mncni controller",
  summary: "Allocates a pod CIDR per family to every Node without spec.podCIDRs.",
  flags: {
    "cluster-cidr": { type: "string", value: "CIDR[,CIDR6]", help: "the pod network(s), at most one per family (required)" },
    "node-cidr-mask-size-ipv4": { type: "int", help: "size of each Node's IPv4 pod CIDR", default: 24, min: 1, max: 30 },
    "node-cidr-mask-size-ipv6": { type: "int", help: "size of each Node's IPv6 pod CIDR", default: 64, min: 1, max: 126 },
    kubeconfig: { type: "string", value: "PATH", help: "kubeconfig file (current context); default: the pod's service account" },
    "leader-elect": { type: "boolean", help: "run only while holding the Lease (for more than one replica)" },
    "lease-namespace": { type: "string", value: "NS", help: "namespace of the Lease", default: "kube-system" },
    "lease-name": { type: "string", value: "NAME", help: "name of the Lease", default: "mncni-controller" },
    "leader-elect-lease-duration": { type: "string", value: "D", help: "how long a Lease not renewed blocks other candidates", default: "15s", check: DURATION },
    "leader-elect-renew-deadline": { type: "string", value: "D", help: "the leader stops when it could not renew for this long", default: "10s", check: DURATION },
    "leader-elect-retry-period": { type: "string", value: "D", help: "how often candidates try and the leader renews", default: "2s", check: DURATION },
    identity: { type: "string", value: "ID", help: "this candidate's holderIdentity (default: hostname_random)" },
    "metrics-addr": { type: "string", value: "HOST:PORT", help: "/healthz, /readyz and /metrics; `off` disables", default: `127.0.0.1:${CONTROLLER_HEALTH_PORT}`, check: (v) => (v === "off" || /^.+:\d+$/.test(v) ? null : "expected HOST:PORT or off") },
    workers: { type: "int", help: "Node patches in flight at once", default: 10, min: 1, max: 1000 },
    "endpoint-slices": { type: "boolean", help: "also write the EndpointSlices of Services with a selector, as kube-controller-manager's endpointslice controller (for clusters without it; the lab turns it on)" },
    "max-endpoints-per-slice": { type: "int", help: "with --endpoint-slices: the most endpoints one EndpointSlice holds (kube-controller-manager's flag; a Service with more gets more slices)", default: DEFAULT_MAX_ENDPOINTS_PER_SLICE, min: 1, max: MAX_ENDPOINTS_PER_SLICE },
    "log-file": { type: "string", value: "FILE", help: "JSON log lines (default stderr)" },
    "log-level": { type: "string", help: "log level", default: "info", choices: ["debug", "info", "warn", "error"] },
  },
} satisfies CommandSpec<FlagTable>;

export function controllerHelp(): string {
  return helpText(CONTROLLER_COMMAND);
}

/** "15s", "500ms", "1m", "1.5s" -> milliseconds. */
export function parseDuration(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new ConfigError(`cannot parse ${flag} "${s}": expected a duration such as 15s or 500ms`);
  const v = Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
  if (v <= 0) throw new ConfigError(`cannot use ${flag} "${s}": must be positive`);
  return v;
}

function parsePools(cidrs: string, mask: Record<Family, number>): FamilyPool[] {
  const pools: FamilyPool[] = [];
  for (const raw of cidrs.split(",").map((s) => s.trim()).filter(Boolean)) {
    let clusterCIDR: string;
    try {
      clusterCIDR = normalizeCIDR(raw);
    } catch (e) {
      throw new ConfigError(`cannot parse --cluster-cidr "${raw}": ${(e as Error).message}`);
    }
    const family = familyOf(clusterCIDR);
    if (pools.some((p) => p.family === family)) throw new ConfigError(`cannot use --cluster-cidr "${cidrs}": more than one IPv${family} CIDR`);
    const prefix = Number(clusterCIDR.split("/")[1]);
    if (mask[family] < prefix) throw new ConfigError(`cannot use --node-cidr-mask-size-ipv${family} "${mask[family]}": shorter than the cluster CIDR "${clusterCIDR}"`);
    if (mask[family] - prefix > 16) throw new ConfigError(`cannot use --node-cidr-mask-size-ipv${family} "${mask[family]}": more than 2^16 node CIDRs in "${clusterCIDR}" (as kube-controller-manager, the difference is at most 16)`);
    pools.push({ family, clusterCIDR, nodeMaskSize: mask[family] });
  }
  if (!pools.length) throw new ConfigError("cannot start controller: --cluster-cidr is required");
  return pools;
}

/**
 * The controller's configuration, "help" for --help. A wrong flag is a UsageError (the CLI's
 * parser); a wrong combination of values a ConfigError.
 */
export function parseControllerArgs(argv: string[], hostname = "controller"): ControllerConfig | "help" {
  // kube-controller-manager's spelling of the switch, kept working.
  const args = argv.flatMap((a) => (a === "--leader-elect=true" ? ["--leader-elect"] : a === "--leader-elect=false" ? [] : [a]));
  const p = parseFlags(CONTROLLER_COMMAND, args);
  if (p === HELP) return "help";
  const v = p.flags;
  const mask = { 4: v["node-cidr-mask-size-ipv4"], 6: v["node-cidr-mask-size-ipv6"] };
  const cfg: ControllerConfig = {
    pools: parsePools(v["cluster-cidr"] ?? "", mask),
    kubeconfig: v.kubeconfig,
    leaderElect: v["leader-elect"],
    leaseNamespace: v["lease-namespace"],
    leaseName: v["lease-name"],
    leaseDurationMs: parseDuration("--leader-elect-lease-duration", v["leader-elect-lease-duration"]),
    renewDeadlineMs: parseDuration("--leader-elect-renew-deadline", v["leader-elect-renew-deadline"]),
    retryPeriodMs: parseDuration("--leader-elect-retry-period", v["leader-elect-retry-period"]),
    // client-go's default: unique per process, so a restarted pod is a new candidate.
    identity: v.identity ?? `${hostname}_${crypto.randomUUID()}`,
    metricsAddr: v["metrics-addr"] === "off" ? undefined : v["metrics-addr"],
    workers: v.workers,
    endpointSlices: v["endpoint-slices"],
    maxEndpointsPerSlice: v["max-endpoints-per-slice"],
    logLevel: v["log-level"] as ControllerConfig["logLevel"],
    logFile: v["log-file"],
  };
  if (!(cfg.retryPeriodMs < cfg.renewDeadlineMs && cfg.renewDeadlineMs < cfg.leaseDurationMs)) {
    throw new ConfigError("cannot use the leader election durations: need retry period < renew deadline < lease duration");
  }
  return Object.freeze(cfg);
}
