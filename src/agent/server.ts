// /healthz (the process serves), /readyz (converged and conflist written), /metrics.
import type { AgentMetrics } from "./metrics.ts";

export interface HealthServer {
  port: number;
  stop(): void;
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
      if (path === "/readyz") return metrics.ready ? new Response("ready\n") : new Response("not ready\n", { status: 503 });
      if (path === "/metrics") return new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
      return new Response("not found\n", { status: 404 });
    },
  });
  return { port: server.port ?? 0, stop: () => server.stop(true) };
}
