// The Node's NetworkUnavailable condition, set to False (reason MncniIsUp) once this node's
// routes and conflist are in place, as Calico and Flannel do: the scheduler and the cloud
// route controller read it. Patched on nodes/status only when the cached Node does not already
// carry it; a failed patch is tried again with capped exponential backoff and jitter.
import { Backoff, RESOURCES, type KubeClient, type KubeObject } from "../kube/index.ts";

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
}

export class NodeCondition {
  static readonly TYPE = "NetworkUnavailable";
  static readonly REASON = "MncniIsUp";
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private inFlight = false;
  private retry?: ReturnType<typeof setTimeout>;
  /** The Node's resourceVersion our last successful patch produced: until the watch shows a newer one, it is done. */
  private patchedRv?: string;
  private closed = false;
  patches = 0;
  failures = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly nodeName: string,
    private readonly cachedNode: (name: string) => (KubeObject & { status?: { conditions?: Condition[] } }) | undefined,
  ) {}

  /** Whether the cached Node already says the network is up (ours to say). */
  private isSet(): boolean {
    const node = this.cachedNode(this.nodeName);
    if (!node) return true; // no Node to patch (yet): its ADDED event brings another pass
    if (this.patchedRv !== undefined && node.metadata?.resourceVersion === this.patchedRv) return true;
    const c = node.status?.conditions?.find((x) => x.type === NodeCondition.TYPE);
    return c?.status === "False" && c.reason === NodeCondition.REASON;
  }

  /** Sets the condition unless it is set, or a patch (or its retry) is already under way. */
  ensure(): void {
    if (this.closed || this.inFlight || this.retry || this.isSet()) return;
    this.inFlight = true;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const patch = {
      status: {
        conditions: [{
          type: NodeCondition.TYPE,
          status: "False",
          reason: NodeCondition.REASON,
          message: "mncni is running on this node: routes and CNI configuration are in place",
          lastTransitionTime: now,
          lastHeartbeatTime: now,
        }],
      },
    };
    this.client
      .patch(RESOURCES.nodes, { name: this.nodeName, subresource: "status" }, patch, "strategic")
      .then((n) => {
        this.patches++;
        this.patchedRv = n.metadata?.resourceVersion;
        this.backoff.reset();
      })
      .catch((e: Error) => {
        this.failures++;
        console.error(`mncni agent: cannot patch node "${this.nodeName}" status: ${e.message}`);
        if (this.closed) return;
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.ensure();
        }, this.backoff.next());
      })
      .finally(() => {
        this.inFlight = false;
      });
  }

  renderMetrics(): string {
    return [
      "# HELP mncni_agent_node_condition_patches_total NetworkUnavailable=False patches of this node's status that succeeded.",
      "# TYPE mncni_agent_node_condition_patches_total counter",
      `mncni_agent_node_condition_patches_total ${this.patches}`,
      "# HELP mncni_agent_node_condition_patch_failures_total Patches of this node's status that failed (retried with backoff).",
      "# TYPE mncni_agent_node_condition_patch_failures_total counter",
      `mncni_agent_node_condition_patch_failures_total ${this.failures}`,
      "",
    ].join("\n");
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
  }
}
