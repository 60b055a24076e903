// Metrics of the API client layer (informers and retries) in the Prometheus text format,
// rendered with a prefix so the agent and the controller each export their own names.
import type { InformerMetrics, RestartReason } from "./informer.ts";

export class KubeMetrics implements InformerMetrics {
  private readonly restarts = new Map<string, number>();
  private readonly lastList = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  private readonly missingKinds = new Set<string>();
  private readonly retries = new Map<string, number>();

  constructor(private readonly prefix: string) {}

  watchRestart(kind: string, reason: RestartReason): void {
    const k = `kind="${kind}",reason="${reason}"`;
    this.restarts.set(k, (this.restarts.get(k) ?? 0) + 1);
  }

  listed(kind: string, atSeconds: number): void {
    this.lastList.set(`kind="${kind}"`, atSeconds);
  }

  objects(kind: string, count: number): void {
    this.counts.set(`kind="${kind}"`, count);
  }

  missing(kind: string, missing: boolean): void {
    if (missing) this.missingKinds.add(kind);
    else this.missingKinds.delete(kind);
  }

  /** An API request retried (429, 5xx, disconnect): ClientOpts.onRetry. */
  retry(method: string): void {
    const k = `method="${method}"`;
    this.retries.set(k, (this.retries.get(k) ?? 0) + 1);
  }

  render(): string {
    const p = this.prefix;
    const out: string[] = [];
    const family = (name: string, type: string, help: string, m: Map<string, number>) => {
      out.push(`# HELP ${p}_${name} ${help}`, `# TYPE ${p}_${name} ${type}`);
      for (const [labels, v] of [...m].sort()) out.push(`${p}_${name}{${labels}} ${v}`);
    };
    family("watch_restarts_total", "counter", "Watches started again, by kind and reason (closed, expired = 410 relist, error, missing = 404).", this.restarts);
    family("last_sync_timestamp_seconds", "gauge", "Unix time of the last complete list, per kind.", this.lastList);
    family("objects", "gauge", "Objects in the informer cache, per kind.", this.counts);
    family("resource_missing", "gauge", "1 while the server does not serve the resource (404 on list).", new Map([...this.missingKinds].map((k) => [`kind="${k}"`, 1])));
    family("api_retries_total", "counter", "API requests retried after 429, 5xx or a dropped connection.", this.retries);
    return out.join("\n") + "\n";
  }
}
