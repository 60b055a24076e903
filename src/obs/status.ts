// `mncni status`: one screen on a node's CNI (as data; cli/text/status.ts renders it) — agent health with its reasons (its /readyz,
// the same reasons), the path to each peer node (mncni's routes), the conflist in use, calls
// and their latency (invocation log; the agent's served count), build, problems found.
import { Netlink, RTPROT_MNCNI } from "../kernel/index.ts";
import { BUILD, VERSION } from "../base/version.ts";
import type { NodeAttachments } from "./attachments.ts";
import { readInvocations } from "../cni/log-reader.ts";
import type { NodeView } from "../cni/node-view.ts";
import { TraceSummary, type VerbSummary } from "./trace.ts";
import { fetchReadyz, podMTUView, type PodMTUView, type ReadyzBody } from "./pod-mtu.ts";

export type { PodMTUView };

export interface NodeStatus {
  node: string;
  version: string;
  build: string;
  /** warnings: what the agent reports on /readyz without being not ready (a peer's other pod MTU). */
  agent: { addr?: string; reachable: boolean; ready?: boolean; reasons: string[]; warnings?: string[]; servedCalls?: number; error?: string; podMTU?: ReadyzBody["podMTU"] };
  /** The pod MTU new pods get (the conflist's) and why (the agent's account). */
  podMTU?: PodMTUView;
  conflist?: string;
  network: string;
  mode: string;
  peers: { podCidr: string; via?: string; dev: string; path: "direct" | "tunnel" }[];
  calls: Record<string, VerbSummary>;
  problems: string[];
}

async function agentHealth(addr: string | undefined): Promise<NodeStatus["agent"]> {
  if (!addr) return { reachable: false, reasons: [], error: "no agent address (--agent-addr)" };
  const base = `http://${addr}`;
  try {
    const body = await fetchReadyz(addr);
    let servedCalls: number | undefined;
    try {
      const m = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
      const line = /^mncni_agent_cni_calls_served_total\s+(\d+)/m.exec(m);
      if (line) servedCalls = Number(line[1]);
    } catch {
      // health without metrics is still worth showing
    }
    return { addr, reachable: true, ready: body.ready, reasons: body.reasons, ...(body.warnings?.length ? { warnings: body.warnings } : {}), ...(servedCalls !== undefined ? { servedCalls } : {}), ...(body.podMTU ? { podMTU: body.podMTU } : {}) };
  } catch (e) {
    return { addr, reachable: false, reasons: [], error: `cannot reach the agent at ${addr}: ${(e as Error).message}` };
  }
}

export async function nodeStatus(v: NodeView, n: NodeAttachments): Promise<NodeStatus> {
  const nl = Netlink.open(v.netns);
  let peers: NodeStatus["peers"];
  try {
    const links = new Map(nl.links().map((l) => [l.index, l]));
    peers = nl.routes({ protocol: RTPROT_MNCNI }).filter((r) => r.gw !== undefined || links.get(r.oif ?? -1)?.kind === "vxlan").map((r) => {
      const dev = links.get(r.oif ?? -1);
      return { podCidr: r.dst, ...(r.gw ? { via: r.gw } : {}), dev: dev?.name ?? String(r.oif), path: dev?.kind === "vxlan" ? ("tunnel" as const) : ("direct" as const) };
    });
  } finally {
    nl.close();
  }
  const summary = new TraceSummary();
  for (const r of readInvocations(v.logFile)) summary.add(r);
  const agent = await agentHealth(v.healthAddr);
  const problems = [
    ...n.problems,
    ...n.attachments.flatMap((a) => a.problems.map((p) => `${a.podName ?? a.containerId}: ${p}`)),
    ...(agent.reachable ? [] : [agent.error!]),
    ...(agent.ready === false ? agent.reasons.map((r) => `agent not ready: ${r}`) : []),
  ];
  const podMTU = podMTUView(v.podMTU, agent);
  return { node: v.name, version: VERSION, build: BUILD, agent, ...(podMTU ? { podMTU } : {}), ...(v.conflist ? { conflist: v.conflist } : {}), network: v.network, mode: v.mode, peers, calls: summary.get(), problems };
}
