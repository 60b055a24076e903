// This node's pod MTU, published on its Node as the mncni.io/pod-mtu annotation so every other
// agent can compare it with its own (a mismatch is reported there, docs/routing.md). Patched
// only when the cached Node carries another value; a failed patch is tried again with capped
// exponential backoff and jitter, as the NetworkUnavailable condition (node-condition.ts).
import { Backoff, RESOURCES, type KubeClient, type KubeObject } from "../kube/index.ts";
import { POD_MTU_ANNOTATION } from "./types.ts";

export class NodePodMTU {
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private inFlight = false;
  private retry?: ReturnType<typeof setTimeout>;
  /** The value and Node resourceVersion our last successful patch produced: done until the watch shows a newer one. */
  private patched?: { value: string; rv?: string };
  private want?: string;
  private closed = false;
  patches = 0;
  failures = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly nodeName: string,
    private readonly cachedNode: (name: string) => KubeObject | undefined,
  ) {}

  private isSet(value: string): boolean {
    const node = this.cachedNode(this.nodeName);
    if (!node) return true; // no Node to patch (yet): its ADDED event brings another pass
    if (this.patched?.value === value && node.metadata?.resourceVersion === this.patched.rv) return true;
    return node.metadata?.annotations?.[POD_MTU_ANNOTATION] === value;
  }

  /** Publishes mtu unless the Node carries it, or a patch (or its retry) is under way. */
  ensure(mtu: number): void {
    this.want = String(mtu);
    if (this.closed || this.inFlight || this.retry || this.isSet(this.want)) return;
    this.inFlight = true;
    const value = this.want;
    this.client
      .patch(RESOURCES.nodes, { name: this.nodeName }, { metadata: { annotations: { [POD_MTU_ANNOTATION]: value } } }, "merge")
      .then((n) => {
        this.patches++;
        this.patched = { value, rv: n.metadata?.resourceVersion };
        this.backoff.reset();
      })
      .catch((e: Error) => {
        this.failures++;
        console.error(`mncni agent: cannot patch node "${this.nodeName}" annotation ${POD_MTU_ANNOTATION}="${value}": ${e.message}`);
        if (this.closed) return;
        this.retry = setTimeout(() => {
          this.retry = undefined;
          if (this.want !== undefined) this.ensure(Number(this.want));
        }, this.backoff.next());
      })
      .finally(() => {
        this.inFlight = false;
      });
  }

  renderMetrics(): string {
    return [
      "# HELP mncni_agent_pod_mtu_patches_total Patches of this node's mncni.io/pod-mtu annotation that succeeded.",
      "# TYPE mncni_agent_pod_mtu_patches_total counter",
      `mncni_agent_pod_mtu_patches_total ${this.patches}`,
      "# HELP mncni_agent_pod_mtu_patch_failures_total Patches of this node's mncni.io/pod-mtu annotation that failed (retried with backoff).",
      "# TYPE mncni_agent_pod_mtu_patch_failures_total counter",
      `mncni_agent_pod_mtu_patch_failures_total ${this.failures}`,
      "",
    ].join("\n");
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
  }
}
