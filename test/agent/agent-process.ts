// The compiled agent as a test runs it in a node namespace: its command line (temp dirs for
// everything it writes), and a GET of its /healthz /readyz /metrics listener.
import { join } from "node:path";
import { inNetns } from "../helpers/netns.ts";

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
  inNetns(ns, ["curl", "-s", "-w", "\n%{http_code}", `http://127.0.0.1:9099${path}`], { allowFail: true }).stdout;
