// Agent configuration: flags, or a JSON file with the same keys in camelCase; flags win.
// Parsed once into a frozen object.
import { dirname, join } from "node:path";
import { MODE_NAMES, type Mode } from "../plugin/netconf.ts";
import { DEFAULT_DATA_DIR } from "../cni/node-view.ts";
import { readFileSync } from "node:fs";
import { CONFLIST_VERSIONS } from "./cni-version.ts";
import { defaultStateFile } from "./run-record.ts";
import { DEFAULT_CNI_SOCKET } from "../serve/protocol.ts";
import { MAX_SOCKET_PATH } from "../sys/unix-socket.ts";
import { parseRoutingSettings, ROUTING_FLAGS, ROUTING_NAMES, type RoutingName, type RoutingSettings } from "./routing/index.ts";
import { collapseCIDRs, normalizeCIDR } from "../net/cidr.ts";
import { helpText, HELP, parseFlags, UsageError, type CommandSpec, type FlagTable } from "../base/flags.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";

export interface AgentConfig {
  nodeName: string;
  source: string;
  cniConfDir: string;
  cniBinDir: string;
  mode: Mode;
  routing: RoutingName;
  clusterCidr: string[];
  nonMasqueradeCidr: string[];
  ipamDataDir: string;
  cniLogFile: string;
  metricsAddr: string;
  /** Unix socket on which the agent executes CNI calls for plugin processes, or "off". */
  cniSocket: string;
  resync: number;
  /** Seconds an attachment must look gone (no host veth, no Pod here) before the agent DELs it itself; 0: never. */
  sandboxGcGrace: number;
  logFile?: string;
  /** Verdict log (JSON lines): denied flows, and accepted ones with policyLogAccepts. */
  flowLog: string;
  policyLogAccepts: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  /** undefined: text on a terminal, JSON otherwise. */
  logFormat?: "text" | "json";
  /** Where the agent records the directories it installs into, for --uninstall. */
  stateFile: string;
  binary?: string;
  bridge: string;
  /** The pod MTU as given; undefined: the underlay's minus the routing backend's encapsulation. */
  mtu?: number;
  /** Each routing backend's own settings (its flags: src/agent/routing/). */
  routingSettings: RoutingSettings;
  chainPortmap: boolean;
  /** The conflist's cniVersion; undefined: the highest every plugin of the chain supports, up to DEFAULT_CONFLIST_VERSION. */
  cniVersion?: string;
  /** Proxy Services in nftables (kube-proxy's job), reading Services and EndpointSlices from the source. */
  serviceProxy: boolean;
  /** NodePorts answer on the node's addresses within these CIDRs; empty: every address of the node. */
  nodeportAddresses: string[];
  /** The eBPF fast path: the conflist asks the plugin to attach it, and the agent keeps the plain-pods map (docs/fast-path.md). */
  fastPath: boolean;
  uninstall: boolean;
  /** With uninstall: also delete a bridge that still has pods attached. */
  force: boolean;
  once: boolean;
}

/**
 * The agent's flags, on the CLI's one flag parser (src/base/flags.ts). Numbers stay strings
 * here: validate() checks them with the config file's values alike. Each flag's key in the
 * config file is its camelCase name.
 */
const FLAGS = {
  "node-name": { type: "string", value: "NAME", help: "this node's Node name (default: $NODE_NAME)" },
  "source": { type: "string", value: "SOURCE", help: "cluster state source: dir:PATH (a directory of Kubernetes manifests), kubernetes (the API server, in-cluster service account) or kubernetes:KUBECONFIG" },
  "cni-conf-dir": { type: "string", value: "DIR", help: "where to write 10-mncni.conflist (default /etc/cni/net.d)" },
  "cni-bin-dir": { type: "string", value: "DIR", help: "where to install mncni (the forwarder), mncni-core and mncni-ipam (default /opt/cni/bin)" },
  "mode": { type: "string", value: MODE_NAMES.join("|"), help: "pod network mode written to the conflist (default bridge)" },
  "routing": { type: "string", value: ROUTING_NAMES.join("|"), help: "how pod CIDRs of other nodes are reached: host-gw (one L2 segment), vxlan (tunnel to every node), auto (direct on a connected subnet, tunnel otherwise; default)" },
  // The routing backends' own flags (vxlan-vni, vxlan-port), declared by each backend.
  ...ROUTING_FLAGS,
  "cluster-cidr": { type: "list", value: "CIDR[,CIDR6]", help: "the cluster's pod network(s)" },
  "non-masquerade-cidr": { type: "list", value: "CIDR", help: "destinations not masqueraded (repeatable; default: the cluster CIDRs). Pod networks are never masqueraded" },
  "ipam-data-dir": { type: "string", value: "DIR", help: `mncni-ipam state directory (default ${DEFAULT_DATA_DIR})` },
  "cni-log-file": { type: "string", value: "FILE", help: "the plugin's log file (default /var/log/mncni/cni.log)" },
  "metrics-addr": { type: "string", value: "HOST:PORT", help: `/healthz /readyz /metrics listener (default 127.0.0.1:${AGENT_HEALTH_PORT}; "off" disables)` },
  "cni-socket": { type: "string", value: "PATH", help: `serve CNI calls of the plugin here, named in the conflist's agentSocket (default ${DEFAULT_CNI_SOCKET}; "off" disables)` },
  "resync": { type: "string", value: "SECONDS", help: "full resync period (default 10)" },
  "sandbox-gc-grace": { type: "string", value: "SECONDS", help: "DEL a sandbox whose DEL never came once its network namespace is gone and no Pod of this node has its address for this long (default 120; 0 disables)" },
  "log-file": { type: "string", value: "FILE", help: "log lines go here (default stderr)" },
  "flow-log": { type: "string", value: "FILE", help: "policy verdict log, JSON lines (default flows.log beside --log-file, else /var/log/mncni/flows.log)" },
  "policy-log-accepts": { type: "boolean", help: "log flows that policies accept too (denied ones always are)" },
  "log-format": { type: "string", value: "text|json", help: "log line format (default: text on a terminal, json otherwise)" },
  "log-level": { type: "string", value: "LEVEL", help: "debug, info, warn or error (default info)" },
  "binary": { type: "string", value: "PATH", help: "the executable to install (default: this one, when compiled)" },
  "bridge": { type: "string", value: "NAME", help: "bridge name in bridge mode (default cbr0)" },
  "mtu": { type: "string", value: "N", help: "pod interface MTU (default: the MTU of the link holding the node's InternalIP, minus 50 (IPv4) or 70 (IPv6) with VXLAN)" },
  "chain-portmap": { type: "boolean", help: "chain the portmap plugin (hostPort) in the conflist" },
  "cni-version": { type: "string", value: "VERSION", help: "the conflist's cniVersion (default: the highest every plugin of the chain supports up to 1.0.0, what containerd 1.6/1.7 accept; 1.1.0 for containerd >= 2.0 or CRI-O >= 1.30)" },
  "service-proxy": { type: "boolean", help: "proxy Services in nftables in place of kube-proxy: ClusterIP, NodePort, LoadBalancer and external IPs (docs/services.md)" },
  "nodeport-addresses": { type: "list", value: "CIDR", help: "with --service-proxy: NodePorts answer only on the node's addresses within these CIDRs (repeatable; default: every address of the node)" },
  "fast-path": { type: "string", value: "on|off", help: "the eBPF fast path for traffic between plain pods of this node (no policy, no Service, no hostPort; docs/fast-path.md; default off)" },
  "config": { type: "string", value: "FILE", help: "JSON file with the same keys in camelCase (flags override it)" },
  "state-file": { type: "string", value: "FILE", help: "where the agent records the directories it installs into, read by --uninstall (default: agent-run.json beside the CNI socket)" },
  "uninstall": { type: "boolean", help: "remove everything mncni created on this node (in the directories of the recorded run, too), then exit" },
  "force": { type: "boolean", help: "with --uninstall: also delete the bridge when pods are still attached to it" },
  "once": { type: "boolean", help: "reconcile once and exit (0 when converged)" },
} satisfies FlagTable;

const AGENT_COMMAND: CommandSpec<typeof FLAGS> = {
  name: "mncni agent",
  args: "--node-name NAME --source dir:PATH|kubernetes[:KUBECONFIG]",
  summary: "Runs the node agent: routes or VXLAN tunnels to the other nodes, egress masquerade, policy, CNI config and binaries, /metrics.",
  flags: FLAGS,
};

/** "--cni-conf-dir" -> "cniConfDir": the config file's key of a flag. */
const keyOf = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function agentHelp(): string {
  return helpText(AGENT_COMMAND);
}

export class ConfigError extends Error {}

const DEFAULTS = {
  cniConfDir: "/etc/cni/net.d",
  cniBinDir: "/opt/cni/bin",
  mode: "bridge",
  routing: "auto",
  clusterCidr: [],
  nonMasqueradeCidr: [],
  ipamDataDir: DEFAULT_DATA_DIR,
  cniLogFile: "/var/log/mncni/cni.log",
  metricsAddr: `127.0.0.1:${AGENT_HEALTH_PORT}`,
  cniSocket: DEFAULT_CNI_SOCKET,
  resync: 10,
  sandboxGcGrace: 120,
  logLevel: "info",
  bridge: "cbr0",
  chainPortmap: false,
  serviceProxy: false,
  nodeportAddresses: [],
  fastPath: false,
  uninstall: false,
  force: false,
  once: false,
} satisfies Partial<AgentConfig>;

const splitList = (v: unknown): string[] =>
  (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(",")).map((s) => s.trim()).filter(Boolean);

/** Returns the config, or "help" when --help was given. Throws ConfigError on bad input. */
export function parseAgentArgs(argv: string[], env: Record<string, string | undefined> = process.env): AgentConfig | "help" {
  // Switches also take "=true" / "=false", as the agent's flags always have.
  const args = argv.flatMap((a) => {
    const m = /^--([a-z0-9-]+)=(true|false)$/.exec(a);
    return m && FLAGS[m[1] as keyof typeof FLAGS]?.type === "boolean" ? (m[2] === "true" ? [`--${m[1]}`] : []) : [a];
  });
  let parsed;
  try {
    parsed = parseFlags(AGENT_COMMAND, args);
  } catch (e) {
    if (e instanceof UsageError) throw new ConfigError(`${e.message} (see --help)`);
    throw e;
  }
  if (parsed === HELP) return "help";
  const raw: Record<string, unknown> = {};
  for (const [flag, v] of Object.entries(parsed.flags)) {
    if (v === undefined || v === false || (Array.isArray(v) && !v.length)) continue;
    raw[keyOf(flag)] = Array.isArray(v) ? splitList(v) : v;
  }
  let file: Record<string, unknown> = {};
  if (typeof raw.config === "string") {
    try {
      file = JSON.parse(readFileSync(raw.config, "utf8"));
    } catch (e) {
      throw new ConfigError(`cannot read config file "${raw.config}": ${(e as Error).message}`);
    }
    const known = new Set(Object.keys(FLAGS).map(keyOf));
    for (const k of Object.keys(file)) if (!known.has(k) || k === "config") throw new ConfigError(`cannot use config file "${raw.config}": unknown key "${k}"`);
  }
  delete raw.config;
  return validate({ ...DEFAULTS, nodeName: env.NODE_NAME, ...file, ...raw });
}

function validate(m: Record<string, unknown>): AgentConfig {
  const str = (k: string) => {
    const v = m[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw new ConfigError(`cannot use ${k} ${JSON.stringify(v)}: must be a string`);
    return v;
  };
  const seconds = (k: string) => {
    const v = Number(m[k]);
    if (!Number.isFinite(v) || v < 0) throw new ConfigError(`cannot use ${k} "${m[k]}": must be a number of seconds, 0 or more`);
    return v;
  };
  const num = (k: string) => {
    const v = Number(m[k]);
    if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`cannot use ${k} "${m[k]}": must be a positive number`);
    return v;
  };
  const cidrs = (k: string) =>
    splitList(m[k] ?? []).map((c) => {
      try {
        return normalizeCIDR(c);
      } catch (e) {
        throw new ConfigError(`cannot use ${k} "${c}": ${(e as Error).message}`);
      }
    });
  const oneOf = <T extends string>(k: string, options: readonly T[]): T => {
    const v = str(k) as T;
    if (!options.includes(v)) throw new ConfigError(`cannot use ${k} "${v}": must be one of ${options.join(", ")}`);
    return v;
  };
  const uninstall = m.uninstall === true;
  const nodeName = str("nodeName") ?? "";
  const source = str("source") ?? "";
  if (!uninstall && !nodeName) throw new ConfigError("cannot start agent: --node-name is required (or $NODE_NAME)");
  if (!uninstall && !source) throw new ConfigError("cannot start agent: --source is required (dir:PATH, kubernetes or kubernetes:KUBECONFIG)");
  const metricsAddr = str("metricsAddr")!;
  if (metricsAddr !== "off" && !/^.+:\d+$/.test(metricsAddr)) throw new ConfigError(`cannot use metricsAddr "${metricsAddr}": expected HOST:PORT or "off"`);
  const cniSocket = str("cniSocket")!;
  if (cniSocket !== "off" && (!cniSocket.startsWith("/") || Buffer.byteLength(cniSocket) > MAX_SOCKET_PATH)) {
    throw new ConfigError(`cannot use cniSocket "${cniSocket}": expected an absolute path of at most ${MAX_SOCKET_PATH} bytes, or "off"`);
  }
  const mtu = m.mtu === undefined ? undefined : num("mtu");
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535)) throw new ConfigError(`cannot use mtu "${mtu}": must be an integer between 576 and 65535`);
  let routingSettings: RoutingSettings;
  try {
    routingSettings = parseRoutingSettings((k) => m[k]);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const cniVersion = str("cniVersion");
  if (cniVersion !== undefined && !CONFLIST_VERSIONS.includes(cniVersion)) throw new ConfigError(`cannot use cniVersion "${cniVersion}": must be one of ${CONFLIST_VERSIONS.join(", ")}`);
  // The config file may say true/false; the flag says on/off.
  const fp = m.fastPath === true ? "on" : m.fastPath === false ? "off" : m.fastPath;
  if (fp !== "on" && fp !== "off") throw new ConfigError(`cannot use fastPath ${JSON.stringify(m.fastPath)}: must be "on" or "off"`);
  const fastPath = fp === "on";
  if (fastPath && uninstall) throw new ConfigError("cannot use --fast-path on with --uninstall: uninstall removes the fast path with everything else");
  const clusterCidr = collapseCIDRs(cidrs("clusterCidr"));
  const nonMasq = cidrs("nonMasqueradeCidr");
  return Object.freeze({
    nodeName,
    source,
    cniConfDir: str("cniConfDir")!,
    cniBinDir: str("cniBinDir")!,
    mode: oneOf("mode", MODE_NAMES),
    routing: oneOf("routing", ROUTING_NAMES),
    clusterCidr,
    nonMasqueradeCidr: nonMasq.length ? nonMasq : clusterCidr,
    ipamDataDir: str("ipamDataDir")!,
    cniLogFile: str("cniLogFile")!,
    metricsAddr,
    cniSocket,
    resync: num("resync"),
    sandboxGcGrace: seconds("sandboxGcGrace"),
    logFile: str("logFile"),
    flowLog: str("flowLog") ?? join(str("logFile") ? dirname(str("logFile")!) : "/var/log/mncni", "flows.log"),
    policyLogAccepts: m.policyLogAccepts === true,
    logLevel: oneOf("logLevel", ["debug", "info", "warn", "error"] as const),
    logFormat: m.logFormat === undefined ? undefined : oneOf("logFormat", ["text", "json"] as const),
    stateFile: str("stateFile") ?? defaultStateFile(cniSocket),
    binary: str("binary"),
    bridge: str("bridge")!,
    mtu,
    routingSettings,
    chainPortmap: m.chainPortmap === true,
    cniVersion,
    serviceProxy: m.serviceProxy === true,
    nodeportAddresses: cidrs("nodeportAddresses"),
    fastPath,
    uninstall,
    force: m.force === true,
    once: m.once === true,
  });
}
