// The text of `mncni status` (the data: src/obs/status.ts).
import type { NodeStatus } from "../../obs/status.ts";
import type { PodMTUView } from "../../obs/pod-mtu.ts";
import { bold, dim, fields, green, red, table } from "./render.ts";
import { formatSummary } from "./trace.ts";

/** "1450 = 1500 underlay − 50 VXLAN headroom kept by auto (...)", or the MTU and why the reason is missing. */
export const formatPodMTU = (m: PodMTUView) => m.why ?? `${m.mtu} ${dim(`(why: ${m.whyMissing ?? "unknown"})`)}`;

export function formatStatus(s: NodeStatus): string {
  const health = !s.agent.reachable ? red("unreachable") : s.agent.ready ? green("ready") : red("not ready");
  return [
    bold(`${s.node}: mncni ${s.version} (build ${s.build})`),
    fields([
      ["agent", `${health}${s.agent.addr ? ` (${s.agent.addr})` : ""}`],
      ...(s.agent.reasons.length ? s.agent.reasons.map((r) => ["  reason", r] as [string, string]) : []),
      ...(s.agent.warnings ?? []).map((w) => ["  warning", w] as [string, string]),
      ["served calls", s.agent.servedCalls === undefined ? "-" : String(s.agent.servedCalls)],
      ["conflist", s.conflist ?? red("none")],
      ["network", `${s.network} (${s.mode} mode)`],
      ["pod MTU", s.podMTU ? formatPodMTU(s.podMTU) : "- (no conflist)"],
    ]),
    "",
    bold("peers"),
    s.peers.length ? table(["POD CIDR", "VIA", "DEV", "PATH"], s.peers.map((p) => [p.podCidr, p.via ?? "-", p.dev, p.path])) : "  none",
    "",
    bold("CNI calls"),
    formatSummary(s.calls),
    "",
    s.problems.length ? red(`problems:\n${s.problems.map((p) => `  - ${p}`).join("\n")}`) : green("no problems found"),
  ].join("\n");
}
