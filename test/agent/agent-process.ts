// The compiled agent as a test runs it in a node namespace: its command line (temp dirs for
// everything it writes), a GET of its /healthz /readyz /metrics listener, and the node
// namespace it runs in.
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { cleanupNetns, createNetns, inNetns, run } from "../helpers/netns.ts";

export function agentArgv(o: { mncni: string; tmp: string; node: string; source: string; clusterCidr: string }, extra: string[] = []): string[] {
  const { tmp } = o;
  return [
    o.mncni, "agent", "--node-name", o.node, "--source", o.source, "--cluster-cidr", o.clusterCidr,
    "--cni-conf-dir", join(tmp, "conf"), "--cni-bin-dir", join(tmp, "bin"), "--ipam-data-dir", join(tmp, "ipam"),
    "--cni-log-file", join(tmp, "cni.log"), "--log-file", join(tmp, "agent.log"), "--cni-socket", "off", "--resync", "1", ...extra,
  ];
}

/** The listener's answer to GET path, with the HTTP status on its last line. */
export const agentHttp = (ns: string, path: string) =>
  inNetns(ns, ["curl", "-s", "-w", "\n%{http_code}", `http://127.0.0.1:9817${path}`], { allowFail: true }).stdout;

/** A metric's value from the agent's /metrics (with exactly these labels, if given); NaN when absent. */
export function agentMetric(ns: string, name: string, labels = ""): number {
  const re = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ""} (\\S+)$`, "m");
  return Number(agentHttp(ns, "/metrics").match(re)?.[1] ?? NaN);
}

/**
 * A node for an agent under test: namespace `ns` whose eth0 is `${subnet}.1/24` on a veth
 * underlay to a peer namespace (`${subnet}.254`), and a temp directory for what it writes.
 */
export function agentNode(label: string, subnet: string): { ns: string; peer: string; tmp: string } {
  const tmp = mkdtempSync(`/tmp/mna-${label}-${process.pid}-`);
  const ns = createNetns(`mna-${label}`);
  const peer = createNetns(`mna-${label}p`);
  run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer]);
  run(["ip", "-n", ns, "addr", "add", `${subnet}.1/24`, "dev", "eth0"]);
  run(["ip", "-n", peer, "addr", "add", `${subnet}.254/24`, "dev", "eth0"]);
  for (const n of [ns, peer]) run(["ip", "-n", n, "link", "set", "eth0", "up"]);
  return { ns, peer, tmp };
}

/** Ends the agent (if one runs), then removes the test's namespaces and the node's temp directory. */
export async function removeAgentNode(tmp: string, agent?: Subprocess): Promise<void> {
  if (agent) {
    agent.kill("SIGKILL");
    await agent.exited;
  }
  cleanupNetns();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
