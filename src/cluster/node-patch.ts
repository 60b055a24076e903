// One value this agent keeps on its own Node (a status condition, an annotation): patched only
// when the cached Node does not already carry it, one patch at a time, a failed one tried again
// with capped exponential backoff and jitter. The watch brings the patched Node back, so
// "done" is read from the cache, or from the resourceVersion our last patch produced until the
// watch shows a newer one.
import { Counter, type Registry } from "prom-client";
import { Backoff, RESOURCES, type KubeClient, type KubeObject, type PatchType } from "../kube/index.ts";

export interface NodeValue<N extends KubeObject> {
  /** For messages: what is patched, e.g. `status condition NetworkUnavailable`. */
  what: string;
  /** Whether the Node already carries value. */
  carries(node: N, value: string): boolean;
  /** The patch that sets value, and where it goes. */
  patch(value: string): { body: unknown; type: PatchType; subresource?: string };
  /** Metric name prefix and what its patches are, for register(). */
  metric: { name: string; help: string };
}

export class NodePatch<N extends KubeObject> {
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private inFlight = false;
  private retry?: ReturnType<typeof setTimeout>;
  private patched?: { value: string; rv?: string };
  private want?: string;
  private closed = false;
  patches = 0;
  failures = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly nodeName: string,
    private readonly cachedNode: (name: string) => N | undefined,
    private readonly value: NodeValue<N>,
  ) {}

  private isSet(value: string): boolean {
    const node = this.cachedNode(this.nodeName);
    if (!node) return true; // no Node to patch (yet): its ADDED event brings another pass
    if (this.patched?.value === value && node.metadata?.resourceVersion === this.patched.rv) return true;
    return this.value.carries(node, value);
  }

  /** Sets value unless the Node carries it, or a patch (or its retry) is already under way. */
  ensure(value: string): void {
    this.want = value;
    if (this.closed || this.inFlight || this.retry || this.isSet(value)) return;
    this.inFlight = true;
    const p = this.value.patch(value);
    this.client
      .patch(RESOURCES.nodes, { name: this.nodeName, ...(p.subresource ? { subresource: p.subresource } : {}) }, p.body, p.type)
      .then((n) => {
        this.patches++;
        this.patched = { value, rv: n.metadata?.resourceVersion };
        this.backoff.reset();
      })
      .catch((e: Error) => {
        this.failures++;
        console.error(`mncni agent: cannot patch node "${this.nodeName}" ${this.value.what}="${value}": ${e.message}`);
        if (this.closed) return;
        this.retry = setTimeout(() => {
          this.retry = undefined;
          if (this.want !== undefined) this.ensure(this.want);
        }, this.backoff.next());
      })
      .finally(() => {
        this.inFlight = false;
      });
  }

  /** Exports the patch and failure counts in registry (read at each scrape). */
  register(registry: Registry): void {
    const { name, help } = this.value.metric;
    const count = (metric: string, text: string, read: () => number) =>
      new Counter({ name: metric, help: text, registers: [registry], collect() { this.reset(); this.inc(read()); } });
    count(`${name}_patches_total`, `${help} that succeeded.`, () => this.patches);
    count(`${name}_patch_failures_total`, `${help} that failed (retried with backoff).`, () => this.failures);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
  }
}
