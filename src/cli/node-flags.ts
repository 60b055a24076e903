// The flags every node-side insight command (inspect, ipam show, trace, status, explain)
// takes to find the node's files when they are not at the defaults.
import { DEFAULT_CACHE_DIR, DEFAULT_CONF_DIR, nodeView, type NodeView } from "../cni/node-view.ts";
import { hostname } from "node:os";

export const NODE_FLAGS = {
  "cni-conf-dir": { type: "string", value: "DIR", default: DEFAULT_CONF_DIR, help: "where the conflist is" },
  "cache-dir": { type: "string", value: "DIR", default: DEFAULT_CACHE_DIR, help: "the runtime's CNI result cache" },
  "log-file": { type: "string", value: "FILE", help: "the invocation log (default: the conflist's logFile)" },
  json: { type: "boolean", help: "machine-readable output" },
} as const;

/**
 * The node's name in output: its Kubernetes name where the process knows it (NODE_NAME, from
 * the downward API in the agent's pod, as the agent itself reads it), else the host name
 * (which on many clusters differs: FQDN, cloud instance names).
 */
export function nodeName(env: Record<string, string | undefined> = process.env): string {
  return env.NODE_NAME?.trim() || hostname();
}

export function viewFromFlags(f: { "cni-conf-dir": string; "cache-dir": string; "log-file"?: string }, extra: { healthAddr?: string } = {}): NodeView {
  return nodeView({ name: nodeName(), confDir: f["cni-conf-dir"], cacheDir: f["cache-dir"], ...(f["log-file"] ? { logFile: f["log-file"] } : {}), ...extra });
}
