// Node IPAM: every Node without spec.podCIDRs gets one CIDR per configured family.
//
// Order matters for "never hand out a CIDR in use": nothing is allocated before the initial
// list has been applied to the allocator (rebuild); after that every Node's CIDRs are
// occupied when the watch shows them, ours are occupied before the patch is sent, and a
// Node's are released only when the Node is deleted. Nodes whose CIDRs lie outside the cluster
// CIDR or overlap another Node's are reported (Event, metric) once and left alone.
import { Backoff, isNotFound, KubeApiError, type EventRecorder, type Informer, type KubeClient, type V1Node } from "../kube/index.ts";
import { RESOURCES } from "../kube/index.ts";
import type { NodeCIDRAllocator } from "./cidr-allocator.ts";
import type { ControllerMetrics, RejectReason } from "./metrics.ts";

export interface Log {
  debug(msg: string, f?: Record<string, unknown>): void;
  info(msg: string, f?: Record<string, unknown>): void;
  warn(msg: string, f?: Record<string, unknown>): void;
  error(msg: string, f?: Record<string, unknown>): void;
}

export interface NodeIpamDeps {
  client: KubeClient;
  nodes: Informer<V1Node>;
  allocator: NodeCIDRAllocator;
  events: EventRecorder;
  metrics: ControllerMetrics;
  log: Log;
  workers: number;
  /** First delay before a failed patch is tried again (doubling per failure, with jitter, up to a minute). */
  retryMs?: number;
}

const EVENT_REASONS = {
  outside: "CIDROutsideClusterCIDR",
  overlap: "CIDROverlap",
  exhausted: "CIDRNotAvailable",
  assigned: "CIDRAssigned",
} as const;

function podCIDRsOf(n: V1Node): string[] {
  const s = n.spec ?? {};
  return s.podCIDRs?.length ? s.podCIDRs : s.podCIDR ? [s.podCIDR] : [];
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export class NodeIpam {
  /** Node name -> the CIDRs this controller counts as that Node's (occupied in the allocator). */
  private readonly held = new Map<string, string[]>();
  /** Node name -> why it is left alone (reported once). */
  private readonly rejected = new Map<string, RejectReason>();
  /** Nodes waiting for a free CIDR (reported once each). */
  private readonly waiting = new Set<string>();
  private readonly queue = new Set<string>();
  private running = 0;
  private started = false;
  private stopped = false;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** Per Node whose patch failed: when to try again. */
  private readonly retries = new Map<string, Backoff>();
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly d: NodeIpamDeps) {
    d.nodes.on({
      add: (n) => this.enqueue(n.metadata?.name),
      update: (_, n) => this.enqueue(n.metadata?.name),
      delete: (n) => this.onDelete(n),
    });
  }

  /** Call once the informer has synced: rebuilds the map from every Node, then allocates. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const nodes = this.d.nodes.list();
    for (const n of nodes) if (podCIDRsOf(n).length) this.adopt(n);
    const u = this.d.allocator.usage().map((x) => `${x.clusterCIDR}: ${x.allocated}/${x.size}`).join(", ");
    this.d.log.info("allocation map rebuilt from existing Nodes", { nodes: nodes.length, usage: u });
    for (const n of nodes) this.enqueue(n.metadata?.name);
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Resolves when nothing is queued or in flight (tests, benchmark). */
  idle(): Promise<void> {
    if (this.queue.size === 0 && this.running === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private enqueue(name: string | undefined): void {
    if (!name || this.stopped) return;
    this.queue.add(name);
    if (this.started) this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.d.workers && this.queue.size) {
      const name = this.queue.values().next().value as string;
      this.queue.delete(name);
      this.running++;
      this.sync(name)
        .catch((e) => this.d.log.error(`cannot sync node "${name}": ${(e as Error).message}`))
        .finally(() => {
          this.running--;
          this.pump();
          if (this.queue.size === 0 && this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
        });
    }
  }

  private later(name: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(name);
    }, ms);
    this.timers.add(t);
  }

  /** Counts a Node's existing CIDRs as used, or reports why they cannot be. */
  private adopt(n: V1Node): void {
    const name = n.metadata!.name!;
    const cidrs = podCIDRsOf(n);
    const mine = this.held.get(name);
    if (mine && same(mine, cidrs)) return;
    if (mine) this.releaseHeld(name);
    const taken: string[] = [];
    let problem: RejectReason | undefined;
    let bad = "";
    for (const c of cidrs) {
      let r: ReturnType<NodeCIDRAllocator["occupy"]>;
      try {
        r = this.d.allocator.occupy(c);
      } catch {
        r = "outside";
      }
      if (r === "ok") taken.push(c);
      else if (!problem) [problem, bad] = [r, c];
    }
    if (problem) {
      for (const c of taken) this.d.allocator.release(c);
      if (this.rejected.get(name) === problem) return;
      this.setRejected(name, problem);
      const msg =
        problem === "outside"
          ? `pod CIDR "${bad}" of Node "${name}" lies outside the cluster CIDR (${this.d.allocator.usage().map((u) => u.clusterCIDR).join(", ")}); Node left alone`
          : `pod CIDR "${bad}" of Node "${name}" overlaps another Node's; Node left alone`;
      this.d.log.warn(msg);
      this.report(n, "Warning", EVENT_REASONS[problem], msg);
      return;
    }
    this.setRejected(name, undefined);
    this.held.set(name, taken);
  }

  private setRejected(name: string, reason: RejectReason | undefined): void {
    const old = this.rejected.get(name);
    if (old) this.d.metrics.rejected[old]--;
    if (reason) {
      this.rejected.set(name, reason);
      this.d.metrics.rejected[reason]++;
    } else {
      this.rejected.delete(name);
    }
  }

  private setWaiting(name: string, on: boolean): void {
    if (on) this.waiting.add(name);
    else this.waiting.delete(name);
    this.d.metrics.waiting = this.waiting.size;
  }

  private releaseHeld(name: string): void {
    const cidrs = this.held.get(name);
    if (!cidrs) return;
    for (const c of cidrs) this.d.allocator.release(c);
    this.held.delete(name);
    this.d.metrics.releases++;
    // Freed space: Nodes waiting for a CIDR, or refused for overlapping this one, try again.
    for (const w of this.waiting) this.enqueue(w);
    for (const [r, why] of this.rejected) if (why === "overlap") this.enqueue(r);
  }

  private onDelete(n: V1Node): void {
    const name = n.metadata?.name;
    if (!name) return;
    this.queue.delete(name);
    this.retries.delete(name);
    this.setRejected(name, undefined);
    this.setWaiting(name, false);
    if (this.held.has(name)) {
      this.d.log.info("node deleted, pod CIDRs released", { node: name, podCIDRs: this.held.get(name) });
      this.releaseHeld(name);
    }
  }

  private async sync(name: string): Promise<void> {
    const n = this.d.nodes.get(name);
    if (!n) return;
    const cidrs = podCIDRsOf(n);
    if (cidrs.length) {
      if (this.rejected.has(name) && this.rejected.get(name) !== "overlap") return;
      this.adopt(n);
      this.setWaiting(name, false);
      return;
    }
    // Ours are on the way (a patch in flight, or done and its watch event not seen yet).
    if (this.held.has(name)) return;
    const got = this.d.allocator.allocate();
    if (!got) {
      this.d.metrics.exhaustions++;
      if (!this.waiting.has(name)) {
        this.setWaiting(name, true);
        const msg = `no free pod CIDR for Node "${name}" in ${this.d.allocator.usage().map((u) => `${u.clusterCIDR} (${u.allocated}/${u.size} used)`).join(", ")}`;
        this.d.log.warn(msg);
        this.report(n, "Warning", EVENT_REASONS.exhausted, msg);
      }
      return;
    }
    this.held.set(name, got);
    try {
      await this.d.client.patch<V1Node>(RESOURCES.nodes, { name }, { spec: { podCIDR: got[0], podCIDRs: got } }, "strategic");
    } catch (e) {
      // Not ours after all: give the CIDRs back; the Node's next state decides what happens.
      this.held.delete(name);
      for (const c of got) this.d.allocator.release(c);
      if (isNotFound(e)) return;
      this.d.metrics.patchErrors++;
      this.d.log.warn(`cannot patch node "${name}" with pod CIDRs ${got.join(",")}: ${(e as Error).message}`);
      // 422: someone else set podCIDRs meanwhile; the watch brings them and they are adopted.
      if (!(e instanceof KubeApiError && e.status === 422)) {
        let b = this.retries.get(name);
        if (!b) this.retries.set(name, (b = new Backoff({ initialMs: this.d.retryMs ?? 1000, maxMs: 60_000 })));
        this.later(name, b.next());
      }
      return;
    }
    this.retries.delete(name);
    this.setWaiting(name, false);
    this.d.metrics.allocations++;
    this.d.log.info("pod CIDRs assigned", { node: name, podCIDRs: got });
  }

  private report(n: V1Node, type: "Normal" | "Warning", reason: string, message: string): void {
    this.d.events.record({ ...n, apiVersion: "v1", kind: "Node" }, { type, reason, message }).catch((e) => {
      this.d.metrics.eventErrors++;
      this.d.log.warn(`cannot post event "${reason}" for node "${n.metadata?.name}": ${(e as Error).message}`);
    });
  }
}
