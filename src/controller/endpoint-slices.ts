// The endpoint-slice controller of `mncni controller --endpoint-slices`, as kube-controller-
// manager's: Services, Pods and the slices it manages watched (list + watch), and for every
// Service with a selector the EndpointSlices of the pods it selects written as they change
// (src/cluster/endpoint-slices.ts says what a slice holds, and how endpoints are packed into
// slices of at most --max-endpoints-per-slice, reusing the current ones). For clusters (and the lab) without
// kube-controller-manager's; only the leader runs it. A change queues the Services it can
// move; one worker writes them one at a time (creates, updates with the cached
// resourceVersion, deletes of slices no longer wanted); a write that fails (a conflict with a
// newer object, the server away) queues the Service again after a backoff.
import type { Logger } from "../base/log.ts";
import { desiredSlices, MANAGED_BY, MANAGED_BY_LABEL, podEndpoint, SERVICE_NAME_LABEL, sliceContent, type EndpointPod, type KubeEndpointSlice, type KubePod, type KubeService } from "../cluster/index.ts";
import { Backoff, Informer, isConflict, isNotFound, RESOURCES, sleep, type KubeClient, type KubeMetrics, type KubeObject } from "../kube/index.ts";

/** An object as the informers hold it (the API's JSON; the cluster types read it). */
type Wire = KubeObject;
const as = <T>(o: Wire): T => o as unknown as T;
const wire = (o: KubePod | KubeEndpointSlice): Wire => o as unknown as Wire;

/** Only what the controller reads of a Pod: labels, addresses, node, ports, readiness, deletion. */
function trimPod(w: Wire): Wire {
  const p = as<KubePod>(w);
  const m = p.metadata;
  return wire({
    kind: "Pod",
    metadata: { name: m.name, namespace: m.namespace, labels: m.labels, resourceVersion: m.resourceVersion, ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}) },
    spec: { nodeName: p.spec?.nodeName, containers: p.spec?.containers?.map((c) => ({ ports: c.ports })) },
    status: { phase: p.status?.phase, podIP: p.status?.podIP, podIPs: p.status?.podIPs, conditions: p.status?.conditions?.filter((c) => c.type === "Ready").map((c) => ({ type: c.type, status: c.status })) },
  } satisfies KubePod);
}

const keyOf = (ns: string | undefined, name: string) => `${ns ?? "default"}/${name}`;

export interface EndpointSliceControllerOpts {
  client: KubeClient;
  metrics?: KubeMetrics;
  log: Logger;
  /** The most endpoints a slice holds (kube-controller-manager's --max-endpoints-per-slice; default 100). */
  maxEndpointsPerSlice?: number;
}

export class EndpointSliceController {
  private readonly services: Informer<Wire>;
  private readonly pods: Informer<Wire>;
  private readonly slices: Informer<Wire>;
  private readonly queue = new Set<string>();
  private readonly retry = new Map<string, Backoff>();
  private readonly abort = new AbortController();
  private wake?: () => void;
  private running?: Promise<void>;
  /** Slices written (created, updated, deleted) since start: for logs and tests. */
  writes = 0;

  constructor(private readonly o: EndpointSliceControllerOpts) {
    const common = { metrics: o.metrics, log: o.log };
    this.services = new Informer(o.client, RESOURCES.services, common);
    this.pods = new Informer(o.client, RESOURCES.pods, { ...common, transform: trimPod });
    this.slices = new Informer(o.client, RESOURCES.endpointSlices, { ...common, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` });
    const svcChanged = (s: Wire) => this.enqueue(keyOf(s.metadata?.namespace, s.metadata?.name ?? ""));
    this.services.on({ add: svcChanged, update: (_, s) => svcChanged(s), delete: svcChanged });
    // A pod moves the Services of its namespace (which select it, before or after the change).
    const podChanged = (p: Wire) => {
      for (const svc of this.services.list()) if ((p.metadata?.namespace ?? "default") === (svc.metadata?.namespace ?? "default")) svcChanged(svc);
    };
    this.pods.on({ add: podChanged, update: (_, p) => podChanged(p), delete: podChanged });
    // A slice changed or deleted by someone else is put back as it should be.
    const sliceChanged = (sl: Wire) => {
      const svc = sl.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (svc) this.enqueue(keyOf(sl.metadata?.namespace, svc));
    };
    this.slices.on({ add: sliceChanged, update: (_, sl) => sliceChanged(sl), delete: sliceChanged });
  }

  /** Starts the informers and, once all three have listed, the worker. */
  async start(): Promise<void> {
    for (const i of [this.services, this.pods, this.slices]) i.start();
    await Promise.all([this.services, this.pods, this.slices].map((i) => i.waitForSync()));
    if (this.abort.signal.aborted) return;
    // Everything once: slices of Services deleted while no controller ran go too.
    for (const s of this.services.list()) this.enqueue(keyOf(s.metadata?.namespace, s.metadata?.name ?? ""));
    for (const sl of this.slices.list()) {
      const svc = sl.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (svc) this.enqueue(keyOf(sl.metadata?.namespace, svc));
    }
    this.running = this.work();
    this.o.log.info("endpoint-slice controller started", { services: this.services.size, pods: this.pods.size, slices: this.slices.size });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    await this.running;
    await Promise.all([this.services, this.pods, this.slices].map((i) => i.stop()));
  }

  private enqueue(key: string): void {
    this.queue.add(key);
    this.wake?.();
  }

  private async work(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (this.queue.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      const key = this.queue.values().next().value as string;
      this.queue.delete(key);
      try {
        await this.sync(key);
        this.retry.delete(key);
      } catch (e) {
        if (signal.aborted) break;
        const b = this.retry.get(key) ?? new Backoff({ initialMs: 200, maxMs: 10_000 });
        this.retry.set(key, b);
        const delay = b.next();
        this.o.log.warn(`cannot sync the EndpointSlices of Service ${key}, again in ${Math.round(delay)} ms: ${(e as Error).message}`);
        void sleep(delay, signal).then(() => !signal.aborted && this.enqueue(key));
      }
    }
  }

  /** Brings one Service's slices to what its pods say now (the Service gone: its slices go). */
  private async sync(key: string): Promise<void> {
    const [ns, name] = key.split("/") as [string, string];
    const w = this.services.get(key);
    const svc = w ? as<KubeService>(w) : undefined;
    const pods: EndpointPod[] = svc ? this.pods.list().map(as<KubePod>).filter((p) => (p.metadata.namespace ?? "default") === ns).map(podEndpoint) : [];
    const current = this.slices.list().map(as<KubeEndpointSlice>).filter((sl) => (sl.metadata.namespace ?? "default") === ns && sl.metadata.labels?.[SERVICE_NAME_LABEL] === name);
    const desired = svc ? desiredSlices(svc, pods, current, this.o.maxEndpointsPerSlice) : [];
    const at = { namespace: ns };
    for (const d of desired) {
      const cur = current.find((c) => c.metadata.name === d.metadata.name);
      if (cur && sliceContent(cur) === sliceContent(d)) continue;
      if (cur) {
        await this.o.client.update(RESOURCES.endpointSlices, { ...at, name: d.metadata.name }, wire({ ...d, metadata: { ...d.metadata, resourceVersion: cur.metadata.resourceVersion } }));
      } else {
        try {
          await this.o.client.create(RESOURCES.endpointSlices, at, wire(d));
        } catch (e) {
          // There already (our own write not yet seen by the watch, or someone else's): the watch brings it, then again.
          if (!isConflict(e)) throw e;
          throw new Error(`EndpointSlice ${ns}/${d.metadata.name} exists but is not in the cache yet`);
        }
      }
      this.writes++;
    }
    for (const c of current.filter((c) => !desired.some((d) => d.metadata.name === c.metadata.name))) {
      await this.o.client.delete(RESOURCES.endpointSlices, { ...at, name: c.metadata.name }).catch((e) => {
        if (!isNotFound(e)) throw e;
      });
      this.writes++;
    }
  }
}
