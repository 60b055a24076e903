// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does.
//
// A candidate takes the Lease when it does not exist, is free (no holder), or its record has
// not changed for leaseDuration by the candidate's own clock (the holder's clock is never
// compared with ours). Every write carries the resourceVersion read just before, so two
// candidates racing for it get one success and one 409 Conflict. The leader renews every
// retryPeriod and gives up when no renewal succeeded for renewDeadline (< leaseDuration, so
// it stops before anyone else may start).
import { sleep } from "./backoff.ts";
import { isConflict, isNotFound, type KubeClient } from "./client.ts";
import { RESOURCES } from "./resources.ts";
import type { V1Lease } from "./types.ts";

export interface LeaderElectionOpts {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log?: { info(msg: string, f?: Record<string, unknown>): void; warn(msg: string, f?: Record<string, unknown>): void };
  now?: () => number;
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * The Lease as it travels: the package types MicroTime fields as Date (its deserialised
 * form); on the wire they are strings with microseconds, which is what we send and compare.
 */
type LeaseSpecWire = { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
type LeaseWire = Omit<V1Lease, "spec"> & { spec?: LeaseSpecWire };

export class LeaderElector {
  private observed?: { holder: string; renewTime: string; rv: string };
  private observedAt = 0;
  private leading = false;
  private readonly now: () => number;

  constructor(
    private readonly client: KubeClient,
    private readonly o: LeaderElectionOpts,
  ) {
    if (!(o.renewDeadlineMs < o.leaseDurationMs)) throw new RangeError(`cannot elect a leader: renew deadline (${o.renewDeadlineMs} ms) must be shorter than the lease duration (${o.leaseDurationMs} ms)`);
    if (!(o.retryPeriodMs < o.renewDeadlineMs)) throw new RangeError(`cannot elect a leader: retry period (${o.retryPeriodMs} ms) must be shorter than the renew deadline (${o.renewDeadlineMs} ms)`);
    this.now = o.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Tries every retryPeriod until this candidate holds the Lease (or the signal aborts). */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal)) {
        this.leading = true;
        this.o.log?.info("became leader", { lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity });
        return true;
      }
      await sleep(this.o.retryPeriodMs, signal);
    }
    return false;
  }

  /**
   * Renews every retryPeriod; resolves when leadership is lost (no renewal for renewDeadline)
   * or the signal aborts (then the Lease is released for a quick hand-over).
   */
  async hold(signal: AbortSignal): Promise<"lost" | "stopped"> {
    let lastRenew = this.now();
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (signal.aborted) break;
      const attempt = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, this.o.renewDeadlineMs - (this.now() - lastRenew)))]);
      if (await this.tryAcquireOrRenew(attempt)) {
        lastRenew = this.now();
      } else if (this.now() - lastRenew >= this.o.renewDeadlineMs) {
        this.leading = false;
        this.o.log?.warn("leader election lost: no renewal within the renew deadline", { renewDeadlineMs: this.o.renewDeadlineMs });
        return "lost";
      }
    }
    await this.release();
    return "stopped";
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { namespace, name, identity } = this.o;
    const now = this.now();
    const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000), renewTime: microTime(now) };
    let lease: LeaseWire;
    try {
      lease = await this.client.get<LeaseWire>(RESOURCES.leases, { namespace, name }, signal);
    } catch (e) {
      if (!isNotFound(e)) return this.failed(e);
      try {
        await this.client.create<LeaseWire>(RESOURCES.leases, { namespace }, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: spec.renewTime, leaseTransitions: 0 },
        }, signal);
        return true;
      } catch (e2) {
        return this.failed(e2);
      }
    }
    const cur = lease.spec ?? {};
    const holder = cur.holderIdentity ?? "";
    const record = { holder, renewTime: String(cur.renewTime ?? ""), rv: lease.metadata?.resourceVersion ?? "" };
    if (!this.observed || this.observed.holder !== record.holder || this.observed.renewTime !== record.renewTime) {
      this.observed = record;
      this.observedAt = now;
    }
    const mine = holder === identity;
    if (holder !== "" && !mine && this.observedAt + this.o.leaseDurationMs > now) return false;
    const next: LeaseWire = {
      ...lease,
      spec: {
        ...cur,
        ...spec,
        acquireTime: mine ? cur.acquireTime : spec.renewTime,
        leaseTransitions: mine ? (cur.leaseTransitions ?? 0) : (cur.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      await this.client.update<LeaseWire>(RESOURCES.leases, { namespace, name }, next, signal);
      return true;
    } catch (e) {
      return this.failed(e);
    }
  }

  private failed(e: unknown): false {
    if (!isConflict(e)) this.o.log?.warn(`cannot renew lease "${this.o.namespace}/${this.o.name}": ${(e as Error).message}`);
    return false;
  }

  /** Hands the Lease over on a clean stop: holder cleared, so a candidate need not wait it out. */
  private async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name, identity } = this.o;
    try {
      const lease = await this.client.get<LeaseWire>(RESOURCES.leases, { namespace, name });
      if (lease.spec?.holderIdentity !== identity) return;
      await this.client.update<LeaseWire>(RESOURCES.leases, { namespace, name }, { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 } }, AbortSignal.timeout(2000));
    } catch (e) {
      this.o.log?.warn(`cannot release lease "${namespace}/${name}": ${(e as Error).message}`);
    }
  }
}
