// Invokes a CNI plugin executable the way a runtime does: CNI_* environment, config on
// stdin, inside a "node" namespace (ip netns exec), and parses what it prints.
import { MNCNI_BIN } from "./binary.ts";
import { run } from "./netns.ts";

export interface CniCall {
  command: "ADD" | "DEL" | "CHECK" | "STATUS" | "GC" | "VERSION";
  conf?: object | string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  /** Run inside this node namespace (ip netns exec); the root namespace otherwise (only for calls that touch no network state). */
  nodeNs?: string;
  /** The executable to run; dist/mncni by default. */
  bin?: string;
  env?: Record<string, string>;
}

export interface CniReply {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, undefined when empty or not JSON. */
  json: any;
}

export function cni(c: CniCall): CniReply {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: c.command, ...c.env };
  if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
  if (c.netns !== undefined) env.CNI_NETNS = c.netns;
  if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname;
  if (c.args !== undefined) env.CNI_ARGS = c.args;
  if (c.path !== undefined) env.CNI_PATH = c.path;
  const bin = c.bin ?? MNCNI_BIN;
  const argv = c.nodeNs ? ["ip", "netns", "exec", c.nodeNs, bin] : [bin];
  const stdin = c.conf === undefined ? "" : typeof c.conf === "string" ? c.conf : JSON.stringify(c.conf);
  const r = run(argv, { stdin, env, allowFail: true });
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}
