// Kubernetes Events about objects (core/v1), the way `kubectl describe` shows them.
import type { KubeClient } from "./client.ts";
import { RESOURCES } from "./resources.ts";
import type { CoreV1Event, KubeObject } from "./types.ts";

export interface EventSpec {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export class EventRecorder {
  private seq = 0;

  constructor(
    private readonly client: KubeClient,
    /** `source.component` and `reportingController`. */
    private readonly component: string,
    private readonly host: string,
  ) {}

  /** Posts an Event about obj. Cluster-scoped objects get theirs in "default", as client-go does. */
  async record(obj: KubeObject, e: EventSpec): Promise<void> {
    const m = obj.metadata ?? {};
    const namespace = m.namespace || "default";
    const now = new Date();
    const ev: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${m.name}.${now.getTime().toString(16)}${(this.seq++).toString(16)}`, namespace },
      involvedObject: { apiVersion: obj.apiVersion ?? "v1", kind: obj.kind, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion },
      type: e.type,
      reason: e.reason,
      message: e.message,
      source: { component: this.component, host: this.host },
      reportingComponent: this.component,
      reportingInstance: this.host,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await this.client.create<CoreV1Event>(RESOURCES.events, { namespace }, ev);
  }
}
