// The controller's metrics, through prom-client (the Prometheus text exposition format 0.0.4)
// like the agent's: the controller sets plain fields, and each metric's collect() reads them
// at a scrape. Served merged with the client layer's (kube/metrics.ts).
import { Counter, Gauge, Registry } from "prom-client";
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
  readonly registry = new Registry();

  constructor(
    readonly kube: KubeMetrics,
    private readonly allocator: () => NodeCIDRAllocator | undefined,
  ) {
    const registers = [this.registry];
    const name = (n: string) => `mncni_controller_${n}`;
    const gauge = (n: string, help: string, read: () => number) => new Gauge({ name: name(n), help, registers, collect() { this.set(read()); } });
    const counter = (n: string, help: string, read: () => number) =>
      new Counter({ name: name(n), help, registers, collect() { this.reset(); this.inc(read()); } });
    gauge("leader", "1 while this replica holds the Lease (or runs without leader election).", () => (this.leader ? 1 : 0));
    const usage = () => this.allocator()?.usage() ?? [];
    for (const [n, help, pick] of [
      ["cidrs_total", "Node CIDRs the cluster CIDR of a family holds.", (u: ReturnType<typeof usage>[number]) => u.size],
      ["cidrs_allocated", "Node CIDRs in use (held by Nodes).", (u: ReturnType<typeof usage>[number]) => u.allocated],
    ] as const) {
      new Gauge({
        name: name(n), help, labelNames: ["family", "cluster_cidr"], registers,
        collect() {
          this.reset();
          for (const u of usage()) this.set({ family: `ipv${u.family}`, cluster_cidr: u.clusterCIDR }, pick(u));
        },
      });
    }
    counter("allocations_total", "Nodes given pod CIDRs.", () => this.allocations);
    counter("releases_total", "Nodes whose CIDRs were released (Node deleted).", () => this.releases);
    const rejected = () => this.rejected;
    new Gauge({
      name: name("nodes_rejected"), help: "Nodes left alone: a pod CIDR outside the cluster CIDR or overlapping another Node's.", labelNames: ["reason"], registers,
      collect() {
        for (const [reason, v] of Object.entries(rejected())) this.set({ reason }, v);
      },
    });
    gauge("nodes_waiting", "Nodes without pod CIDRs because the cluster CIDR is exhausted.", () => this.waiting);
    counter("exhausted_total", "Allocations refused because no CIDR was free.", () => this.exhaustions);
    counter("patch_errors_total", "Node patches that failed (retried).", () => this.patchErrors);
    counter("event_errors_total", "Events that could not be posted.", () => this.eventErrors);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, the client layer's metrics included, one line per sample or comment. */
  async render(): Promise<string> {
    return (await Registry.merge([this.registry, this.kube.registry]).metrics()).replace(/\n{2,}/g, "\n");
  }
}
