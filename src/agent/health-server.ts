// The agent's HTTP endpoints: /healthz (the process serves), /readyz (converged and conflist
// written; otherwise why not; and what is worth knowing but does not make it not ready),
// /metrics (Prometheus text, rendered by prom-client).
import { policyInputs } from "../cluster/index.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { ReconcileReport } from "./reconciler.ts";
import { podMTUMismatchWarning } from "./routing/index.ts";

export interface HealthServer {
  port: number;
  stop(): void;
}

/** Why a pass leaves the node not ready, one line each; empty when it is ready. */
export function readinessReasons(rep: Pick<ReconcileReport, "errors" | "problems" | "conflistWritten">): string[] {
  return [
    ...rep.errors.map((e) => `${e.step}: ${e.message}`),
    ...rep.problems,
    ...(rep.conflistWritten ? [] : ["conflist not written yet"]),
  ];
}

/** The peers publishing another pod MTU than this node's, one sentence each. */
export function podMTUWarnings(rep: Pick<ReconcileReport, "podMTU" | "podMTUMismatch">): string[] {
  return [...rep.podMTUMismatch].map(([peer, theirs]) => podMTUMismatchWarning(peer, theirs, rep.podMTU!));
}

/** What a pass reports without making the node not ready, one line each: unreachable peers first. */
export function readinessWarnings(rep: Pick<ReconcileReport, "podMTU" | "podMTUMismatch" | "policyRejected"> & Partial<Pick<ReconcileReport, "peerWarnings" | "warnings">>): string[] {
  return [...(rep.peerWarnings ?? []), ...(rep.warnings ?? []), ...podMTUWarnings(rep), ...(rep.policyRejected ?? [])];
}

/** The /readyz body: text (a line per reason, then per warning), or JSON when asked for with Accept or ?format=json. */
export function readyzResponse(req: Request, metrics: Pick<AgentMetrics, "ready" | "notReady" | "warnings"> & Partial<Pick<AgentMetrics, "podMTU" | "podMTUWhy" | "policyProgrammedFrom">>): Response {
  const status = metrics.ready ? 200 : 503;
  const reasons = metrics.ready ? [] : metrics.notReady;
  const warnings = metrics.warnings;
  const url = new URL(req.url);
  if (url.searchParams.get("format") === "json" || (req.headers.get("accept") ?? "").includes("application/json")) {
    // podMTU: the MTU the conflist gives new pods and why (the insight commands show it).
    const podMTU = metrics.podMTU ? { podMTU: { mtu: metrics.podMTU, ...(metrics.podMTUWhy ? { why: metrics.podMTUWhy } : {}) } } : {};
    // policy.inputs: the fingerprint of what the policies in force were programmed from (lab check waits for it).
    const policy = metrics.policyProgrammedFrom ? { policy: { inputs: policyInputs(metrics.policyProgrammedFrom) } } : {};
    // policy first: a reader that keeps only the start of a long answer (many warnings) still has it.
    return Response.json({ ...policy, ready: metrics.ready, reasons, warnings, ...podMTU }, { status });
  }
  const lines = (xs: string[]) => xs.map((r) => `- ${r}\n`).join("");
  const text = (metrics.ready ? "ready\n" : `not ready:\n${lines(reasons)}`) + (warnings.length ? `warnings:\n${lines(warnings)}` : "");
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

export function startHealthServer(addr: string, metrics: AgentMetrics): HealthServer {
  const colon = addr.lastIndexOf(":");
  const hostname = addr.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const server = Bun.serve({
    hostname,
    port: Number(addr.slice(colon + 1)),
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") return new Response("ok\n");
      if (path === "/readyz") return readyzResponse(req, metrics);
      if (path === "/metrics") return metrics.render().then((text) => new Response(text, { headers: { "content-type": metrics.contentType } }));
      return new Response("not found\n", { status: 404 });
    },
  });
  return { port: server.port ?? 0, stop: () => server.stop(true) };
}
