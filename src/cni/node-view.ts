// Where a node keeps what the insight commands read: its network namespace (the lab's node
// namespaces; the current one on a real node), the conflist in use, the IPAM data directory,
// the CNI result cache and the invocation log. Read from the conflist, so a node configured
// with other paths is seen as its plugin sees itself.
import { exists, readDir, readText } from "../sys/files.ts";
import { join } from "../sys/paths.ts";
import { DEFAULT_LOG_FILE } from "./invocation-log.ts";

export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
export const DEFAULT_CACHE_DIR = "/var/lib/cni/results";
/** host-local's (and mncni-ipam's) dataDir unless the conflist's ipam section names one. */
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

export interface NodeView {
  /** A label for output: the lab's node name, or the host name. */
  name: string;
  /** The node's network namespace; undefined: this process's. */
  netns?: string;
  confDir: string;
  /** The conflist file in use (the first mncni one in confDir), when there is one. */
  conflist?: string;
  network: string;
  mode: string;
  antiSpoofing: boolean;
  /** The pod MTU the conflist gives new pods (the agent keeps it current); undefined: the plugin's default. */
  podMTU?: number;
  dataDir: string;
  cacheDir: string;
  logFile: string;
  /** The conflist's ipam section, as written (parsed by the IPAM's own parser where used). */
  ipam?: unknown;
  /** The agent's health address ("127.0.0.1:9153"), when known. */
  healthAddr?: string;
  /** The conflist asks the plugin to attach the eBPF fast path. */
  fastPath?: boolean;
  /** The bridge the conflist names (bridge mode). */
  bridge?: string;
}

interface MncniPluginConf {
  type?: string;
  mode?: string;
  antiSpoofing?: boolean;
  fastPath?: boolean;
  bridge?: string;
  mtu?: number;
  logFile?: string;
  ipam?: { dataDir?: string };
}

/** The mncni conflist of confDir (lexically first, as the runtime picks), or undefined. */
function findConflist(confDir: string): { file: string; name: string; plugin: MncniPluginConf } | undefined {
  let names: string[];
  try {
    names = readDir(confDir).filter((n) => /\.(conflist|conf|json)$/.test(n)).sort();
  } catch {
    return undefined;
  }
  for (const n of names) {
    try {
      const c = JSON.parse(readText(join(confDir, n))) as { name?: string; type?: string; plugins?: MncniPluginConf[] };
      const plugin = (c.plugins ?? [c as MncniPluginConf]).find((p) => p.type === "mncni");
      if (plugin && c.name) return { file: join(confDir, n), name: c.name, plugin };
    } catch {
      // a file being written, or not ours: the runtime would skip it too
    }
  }
  return undefined;
}

export function nodeView(o: { name: string; netns?: string; confDir?: string; cacheDir?: string; logFile?: string; healthAddr?: string }): NodeView {
  const confDir = o.confDir ?? DEFAULT_CONF_DIR;
  const c = findConflist(confDir);
  return {
    name: o.name,
    ...(o.netns ? { netns: o.netns } : {}),
    confDir,
    ...(c ? { conflist: c.file } : {}),
    network: c?.name ?? "mncni",
    mode: c?.plugin.mode ?? "bridge",
    antiSpoofing: c?.plugin.antiSpoofing !== false,
    ...(typeof c?.plugin.mtu === "number" ? { podMTU: c.plugin.mtu } : {}),
    dataDir: c?.plugin.ipam?.dataDir ?? DEFAULT_DATA_DIR,
    cacheDir: o.cacheDir ?? DEFAULT_CACHE_DIR,
    logFile: o.logFile ?? c?.plugin.logFile ?? DEFAULT_LOG_FILE,
    ...(c?.plugin.ipam ? { ipam: c.plugin.ipam } : {}),
    ...(o.healthAddr ? { healthAddr: o.healthAddr } : {}),
    ...(c?.plugin.fastPath === true ? { fastPath: true } : {}),
    ...(typeof c?.plugin.bridge === "string" ? { bridge: c.plugin.bridge } : {}),
  };
}

export const netnsExists = (path: string | undefined) => path === undefined || exists(path);
