// The controller's metrics (Prometheus text format 0.0.4), next to the client layer's.
import type { KubeMetrics } from "../kube/index.ts";
import type { NodeCIDRAllocator } from "./cidr-allocator.ts";

export type RejectReason = "outside" | "overlap";

export class ControllerMetrics {
  leader = false;
  allocations = 0;
  releases = 0;
  exhaustions = 0;
  patchErrors = 0;
  eventErrors = 0;
  /** Nodes currently left alone because of their CIDRs, by reason. */
  readonly rejected: Record<RejectReason, number> = { outside: 0, overlap: 0 };
  /** Nodes without a CIDR because a family is exhausted. */
  waiting = 0;

  constructor(
    readonly kube: KubeMetrics,
    private readonly allocator: () => NodeCIDRAllocator | undefined,
  ) {}

  render(): string {
    const out: string[] = [];
    const one = (name: string, type: string, help: string, lines: [string, number][]) => {
      out.push(`# HELP mncni_controller_${name} ${help}`, `# TYPE mncni_controller_${name} ${type}`);
      for (const [labels, v] of lines) out.push(`mncni_controller_${name}${labels} ${v}`);
    };
    one("leader", "gauge", "1 while this replica holds the Lease (or runs without leader election).", [["", this.leader ? 1 : 0]]);
    const usage = this.allocator()?.usage() ?? [];
    one("cidrs_total", "gauge", "Node CIDRs the cluster CIDR of a family holds.", usage.map((u) => [`{family="ipv${u.family}",cluster_cidr="${u.clusterCIDR}"}`, u.size]));
    one("cidrs_allocated", "gauge", "Node CIDRs in use (held by Nodes).", usage.map((u) => [`{family="ipv${u.family}",cluster_cidr="${u.clusterCIDR}"}`, u.allocated]));
    one("allocations_total", "counter", "Nodes given pod CIDRs.", [["", this.allocations]]);
    one("releases_total", "counter", "Nodes whose CIDRs were released (Node deleted).", [["", this.releases]]);
    one("nodes_rejected", "gauge", "Nodes left alone: a pod CIDR outside the cluster CIDR or overlapping another Node's.", Object.entries(this.rejected).map(([r, v]) => [`{reason="${r}"}`, v]));
    one("nodes_waiting", "gauge", "Nodes without pod CIDRs because the cluster CIDR is exhausted.", [["", this.waiting]]);
    one("exhausted_total", "counter", "Allocations refused because no CIDR was free.", [["", this.exhaustions]]);
    one("patch_errors_total", "counter", "Node patches that failed (retried).", [["", this.patchErrors]]);
    one("event_errors_total", "counter", "Events that could not be posted.", [["", this.eventErrors]]);
    return out.join("\n") + "\n" + this.kube.render();
  }
}
