// healthCheckNodePort: for a LoadBalancer Service with externalTrafficPolicy Local, the node
// answers on that port how many of the Service's endpoints run here, so the load balancer sends
// only to nodes that have one (kube-proxy's service health server,
// pkg/proxy/healthcheck/service_health.go): 200 with at least one, 503 without; the body
// names the Service and the count.
import type { Server } from "bun";

interface Entry {
  server: Server<undefined>;
  service: string;
  local: number;
}

export class HealthCheckServers {
  private readonly servers = new Map<number, Entry>();

  /** Serves exactly these ports; returns what changed, and why a port cannot be served. */
  update(want: ReadonlyMap<number, { service: string; local: number }>): { changes: string[]; problems: string[] } {
    const out = { changes: [] as string[], problems: [] as string[] };
    for (const [port, e] of this.servers) {
      if (want.has(port)) continue;
      e.server.stop(true);
      this.servers.delete(port);
      out.changes.push(`stop health check for ${e.service} on port ${port}`);
    }
    for (const [port, w] of want) {
      const had = this.servers.get(port);
      if (had) {
        had.service = w.service;
        had.local = w.local;
        continue;
      }
      const entry = { service: w.service, local: w.local } as Entry;
      try {
        entry.server = Bun.serve({ port, hostname: "0.0.0.0", fetch: () => this.answer(entry) });
        // An answering server must not keep a stopped agent alive (the agent ends once nothing
        // of its own is left running): the port closes with the process.
        entry.server.unref();
      } catch (e) {
        out.problems.push(`cannot answer the health check of Service ${w.service} on port ${port}: ${(e as Error).message}`);
        continue;
      }
      this.servers.set(port, entry);
      out.changes.push(`answer health check for ${w.service} on port ${port}`);
    }
    return out;
  }

  private answer(e: Entry): Response {
    const [namespace, name] = e.service.split("/");
    const body = { service: { namespace, name }, localEndpoints: e.local, serviceProxyHealthy: true };
    return Response.json(body, { status: e.local > 0 ? 200 : 503, headers: { "X-Content-Type-Options": "nosniff" } });
  }

  close(): void {
    for (const e of this.servers.values()) e.server.stop(true);
    this.servers.clear();
  }
}
