// The text of `mncni lab status` (the data: src/lab/status.ts).
import type { LabStatus } from "../../lab/status.ts";
import { formatLabServices } from "./lab-services.ts";

function table(header: string[], rows: string[][]): string[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

export function formatLabStatus(st: LabStatus): string {
  return [
    `lab ${st.name}: mode ${st.mode}, ${st.wiring} wiring, ${st.runtime} runtime, ${st.source} source, routing ${st.routing}${st.segments.length > 1 ? ` over ${st.segments.length} segments` : ""}, cluster CIDR ${[st.clusterCidr, ...(st.clusterCidr6 ? [st.clusterCidr6] : [])].join(",")}`,
    ...(st.apiserver ? [`API server ${st.apiserver.url}; kubectl: export KUBECONFIG=${st.apiserver.kubeconfig}`] : []),
    ...(st.complete ? [] : [`INCOMPLETE: its \`lab up\` was interrupted (or is still running); remove it with \`mncni lab down --name ${st.name}\``]),
    "",
    ...table(
      ["NODE", "NAMESPACE", "SEGMENT", "ADDRESS", "POD CIDRS", "POD MTU", "AGENT", "READY"],
      st.nodes.map((n) => [n.name, n.namespace, String(n.segment), n.addresses.join(","), n.podCIDRs.join(","), n.podMTU === undefined ? "-" : String(n.podMTU), n.agentPid ? `${n.agentPid}${n.agentAlive ? "" : " (dead)"}` : "-", n.ready ? "yes" : "no"]),
    ),
    // Why a node is not ready, one line per reason (its agent's /readyz reasons when it answers).
    ...st.nodes.flatMap((n) => n.notReady.map((r) => `not ready: ${n.name}: ${r}`)),
    // Why each pod MTU is what it is, one line per distinct reason.
    ...[...new Set(st.nodes.map((n) => n.podMTUWhy).filter((w): w is string => w !== undefined))].map(
      (w) => `pod MTU ${w} (${st.nodes.filter((n) => n.podMTUWhy === w).map((n) => n.name).join(", ")})`,
    ),
    // What the agents report without being not ready (a peer's other pod MTU), one line each.
    ...st.nodes.flatMap((n) => n.warnings.map((w) => `warning: ${n.name}: ${w}`)),
    // A failed ADD whose rollback DEL failed too: its address stays reserved until a DEL works.
    ...st.nodes.flatMap((n) => (n.pendingDel ?? []).map((p) => `pending DEL: ${n.name}/${p.pod} (tried again before the next pod add or remove on ${n.name}): ${p.error}`)),
    "",
    // Per node and peer: direct (a route via the peer's address) or tunnel (VXLAN), as the kernel has it.
    ...table(
      ["FROM", "TO", "PATH"],
      st.nodes.flatMap((n) => n.paths.map((p) => [n.name, p.peer, p.path === p.expected ? p.path : `${p.path} (expected ${p.expected})`])),
    ),
    "",
    ...table(
      ["POD", "NODE", "NAMESPACE", "ADDRESSES", "ADD ms"],
      st.pods.map((p) => [`${p.k8sNamespace}/${p.k8sName}`, p.node, p.namespace, p.ips.join(","), p.addMs?.toFixed(1) ?? "-"]),
    ),
    ...(st.pods.length ? ["ADD ms: the plugin's own time for the pod's ADD (its invocation log, as `inspect` shows it); the runtime waited longer (--json runtimeAddMs)"] : []),
    ...(st.services.length ? ["", ...formatLabServices(st.services).split("\n")] : []),
    ...(st.dns ? [`cluster DNS:   ${st.dns.addresses.join(", ")} port 53 (cluster.local; PID ${st.dns.pid}${st.dns.alive ? "" : ", NOT RUNNING"})`] : []),
    "",
    `external host: ${st.external.namespace} ${st.external.address} (router ${st.underlay.router}: ${st.segments.map((g) => `${g.routerAddress} on ${g.cidr}`).join(", ")}, ${st.external.router})`,
    ...(st.external.address6
      ? [`               ${st.external.address6} (router ${st.underlay.routerAddress6} on ${st.underlay.cidr6}, ${st.external.router6})`]
      : []),
    `directories:   ${st.dirs.lab} (manifests: ${st.dirs.manifests}, per node: nodes/<node>/{net.d,bin,ipam,results,cni.log,cni.sock,agent.log})`,
  ].join("\n");
}
