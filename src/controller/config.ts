// `mncni controller` flags -> a frozen, validated config. Pure: no files read, no network.
import type { FamilyPool } from "./allocator.ts";
import { type Family, familyOf } from "../net/ip.ts";
import { normalizeCIDR } from "../net/cidr.ts";

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
  logLevel: "debug" | "info" | "warn" | "error";
  logFile?: string;
}

export class ConfigError extends Error {}

const FLAGS: [string, string, string][] = [
  ["--cluster-cidr CIDR[,CIDR6]", "required", "the pod network(s), at most one per family"],
  ["--node-cidr-mask-size-ipv4 N", "24", "size of each Node's IPv4 pod CIDR"],
  ["--node-cidr-mask-size-ipv6 N", "64", "size of each Node's IPv6 pod CIDR"],
  ["--kubeconfig PATH", "in-cluster", "kubeconfig file (current context); default: the pod's service account"],
  ["--leader-elect", "off", "run only while holding the Lease (for more than one replica)"],
  ["--lease-namespace NS", "kube-system", "namespace of the Lease"],
  ["--lease-name NAME", "mncni-controller", "name of the Lease"],
  ["--leader-elect-lease-duration D", "15s", "how long a Lease not renewed blocks other candidates"],
  ["--leader-elect-renew-deadline D", "10s", "the leader stops when it could not renew for this long"],
  ["--leader-elect-retry-period D", "2s", "how often candidates try and the leader renews"],
  ["--identity ID", "hostname_random", "this candidate's holderIdentity"],
  ["--metrics-addr HOST:PORT", "127.0.0.1:9098", "/healthz, /readyz and /metrics; `off` disables"],
  ["--workers N", "10", "Node patches in flight at once"],
  ["--log-file FILE", "stderr", "JSON log lines"],
  ["--log-level LEVEL", "info", "debug, info, warn or error"],
];

export function controllerHelp(): string {
  return ["Usage: mncni controller --cluster-cidr CIDR[,CIDR6] [flags]", "", "Allocates a pod CIDR per family to every Node without spec.podCIDRs.", "", ...FLAGS.map(([f, d, m]) => `  ${f.padEnd(36)} ${m} (default ${d})`)].join("\n");
}

/** "15s", "500ms", "1m", "1.5s" -> milliseconds. */
export function parseDuration(flag: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s);
  if (!m) throw new ConfigError(`cannot parse ${flag} "${s}": expected a duration such as 15s or 500ms`);
  const v = Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : 60_000);
  if (v <= 0) throw new ConfigError(`cannot use ${flag} "${s}": must be positive`);
  return v;
}

function parseInt10(flag: string, s: string, min: number, max: number): number {
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new ConfigError(`cannot use ${flag} "${s}": expected an integer from ${min} to ${max}`);
  return Number(s);
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

export function parseControllerArgs(argv: string[], hostname = "controller"): ControllerConfig | "help" {
  const v: Record<string, string> = {};
  let leaderElect = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") return "help";
    if (a === "--leader-elect" || a === "--leader-elect=true") {
      leaderElect = true;
      continue;
    }
    if (a === "--leader-elect=false") {
      leaderElect = false;
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!FLAGS.some(([f]) => f.split(" ")[0] === name) || name === "--leader-elect") throw new ConfigError(`cannot parse flag "${a}": unknown flag (see --help)`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`cannot parse flag "${name}": needs a value`);
    v[name.slice(2)] = value;
  }
  const mask = {
    4: parseInt10("--node-cidr-mask-size-ipv4", v["node-cidr-mask-size-ipv4"] ?? "24", 1, 30),
    6: parseInt10("--node-cidr-mask-size-ipv6", v["node-cidr-mask-size-ipv6"] ?? "64", 1, 126),
  };
  const logLevel = (v["log-level"] ?? "info") as ControllerConfig["logLevel"];
  if (!["debug", "info", "warn", "error"].includes(logLevel)) throw new ConfigError(`cannot use --log-level "${logLevel}": expected debug, info, warn or error`);
  const metricsAddr = v["metrics-addr"] ?? "127.0.0.1:9098";
  if (metricsAddr !== "off" && !/^.+:\d+$/.test(metricsAddr)) throw new ConfigError(`cannot use --metrics-addr "${metricsAddr}": expected HOST:PORT or off`);
  const cfg: ControllerConfig = {
    pools: parsePools(v["cluster-cidr"] ?? "", mask),
    kubeconfig: v.kubeconfig,
    leaderElect,
    leaseNamespace: v["lease-namespace"] ?? "kube-system",
    leaseName: v["lease-name"] ?? "mncni-controller",
    leaseDurationMs: parseDuration("--leader-elect-lease-duration", v["leader-elect-lease-duration"] ?? "15s"),
    renewDeadlineMs: parseDuration("--leader-elect-renew-deadline", v["leader-elect-renew-deadline"] ?? "10s"),
    retryPeriodMs: parseDuration("--leader-elect-retry-period", v["leader-elect-retry-period"] ?? "2s"),
    // client-go's default: unique per process, so a restarted pod is a new candidate.
    identity: v.identity ?? `${hostname}_${crypto.randomUUID()}`,
    metricsAddr: metricsAddr === "off" ? undefined : metricsAddr,
    workers: parseInt10("--workers", v.workers ?? "10", 1, 1000),
    logLevel,
    logFile: v["log-file"],
  };
  if (!(cfg.retryPeriodMs < cfg.renewDeadlineMs && cfg.renewDeadlineMs < cfg.leaseDurationMs)) {
    throw new ConfigError("cannot use the leader election durations: need retry period < renew deadline < lease duration");
  }
  return Object.freeze(cfg);
}
