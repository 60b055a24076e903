// Metrics of the API client layer (informers and retries), through prom-client like every
// metric of mncni, named with a prefix so the agent and the controller each export their
// own. They live in their own registry, which the process merges into its /metrics.
import { Counter, Gauge, Registry } from "prom-client";
import type { InformerMetrics, RestartReason } from "./informer.ts";

export class KubeMetrics implements InformerMetrics {
  readonly registry = new Registry();
  private readonly restarts: Counter<"kind" | "reason">;
  private readonly lastList: Gauge<"kind">;
  private readonly counts: Gauge<"kind">;
  private readonly missingKinds: Gauge<"kind">;
  private readonly retries: Counter<"method">;

  constructor(prefix: string) {
    const registers = [this.registry];
    this.restarts = new Counter({
      name: `${prefix}_watch_restarts_total`,
      help: "Watches started again, by kind and reason (closed, expired = 410 relist, error, missing = 404, idle = nothing came for the idle timeout).",
      labelNames: ["kind", "reason"], registers,
    });
    this.lastList = new Gauge({ name: `${prefix}_last_sync_timestamp_seconds`, help: "Unix time of the last complete list, per kind.", labelNames: ["kind"], registers });
    this.counts = new Gauge({ name: `${prefix}_objects`, help: "Objects in the informer cache, per kind.", labelNames: ["kind"], registers });
    this.missingKinds = new Gauge({ name: `${prefix}_resource_missing`, help: "1 while the server does not serve the resource (404 on list).", labelNames: ["kind"], registers });
    this.retries = new Counter({ name: `${prefix}_api_retries_total`, help: "API requests retried after 429, 5xx or a dropped connection.", labelNames: ["method"], registers });
  }

  watchRestart(kind: string, reason: RestartReason): void {
    this.restarts.inc({ kind, reason });
  }

  listed(kind: string, atSeconds: number): void {
    this.lastList.set({ kind }, atSeconds);
  }

  objects(kind: string, count: number): void {
    this.counts.set({ kind }, count);
  }

  missing(kind: string, missing: boolean): void {
    if (missing) this.missingKinds.set({ kind }, 1);
    else this.missingKinds.remove({ kind });
  }

  /** An API request retried (429, 5xx, disconnect): ClientOpts.onRetry. */
  retry(method: string): void {
    this.retries.inc({ method });
  }

  /** The exposition text of these metrics alone (a process serves them merged with its own). */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
