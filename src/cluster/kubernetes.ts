// Cluster state from the Kubernetes API: one informer (list + watch, src/kube) per kind mncni
// reads, feeding the same state builder the manifests directory feeds. The contract is the
// manifests source's: start() fills the cache (the initial list of every kind) or rejects;
// snapshot() hands out the cached state, marked stale while a list or watch is failing (the
// last good state is kept, so routes stay); watch() tells the agent about changes.
//
// Scale (1,000 Nodes, 30,000 Pods): watch events only mark the cache dirty; the state is
// rebuilt at most once per agent pass (snapshot() after a change), and change notifications
// are coalesced over a short window, so a burst of Pod events costs one rebuild, not one each.
// Pods are trimmed to the fields mncni uses before they are stored.
import type { Registry } from "prom-client";
import { Informer, KubeClient, KubeMetrics, loadKubeConfig, RESOURCES, isNotFound, type InformerMetrics, type KubeConfig, type KubeObject as WireObject, type Resource, type RestartReason } from "../kube/index.ts";
import { NETWORK_UNAVAILABLE, nodeCondition } from "./node-condition.ts";
import { nodePodMTU, NodeWarningEvents } from "./node-pod-mtu.ts";
import { encodeRoutingData, nodeRoutingData, ROUTING_CONDITION } from "./node-routing.ts";
import { POD_MTU_CONDITION } from "./types.ts";
import { buildClusterState } from "./build-state.ts";
import type { ClusterSource, ClusterState, KINDS, KubeObject, SourceOptions, SourceSnapshot } from "./types.ts";

/** What is watched, and the trim applied to each object before it is cached. */
const WATCHED: { resource: Resource; trim?: (o: Wire) => Wire }[] = [
  { resource: RESOURCES.nodes, trim: trimNode },
  { resource: RESOURCES.pods, trim: trimPod },
  { resource: RESOURCES.namespaces, trim: trimMeta },
  { resource: RESOURCES.networkPolicies },
  { resource: RESOURCES.clusterNetworkPolicies },
];

/** Watched only for the Service proxy (SourceOptions.services): without it the agent needs no RBAC for them. */
const SERVICE_WATCHED: { resource: Resource; trim?: (o: Wire) => Wire }[] = [
  { resource: RESOURCES.services, trim: trimService },
  { resource: RESOURCES.endpointSlices, trim: trimEndpointSlice },
];

type Wire = WireObject & { spec?: any; status?: any };

/** Kinds whose resource may be missing at start (CRDs, or an API the agent can run without): unknown until listed. */
const MAY_BE_MISSING: ReadonlySet<string> = new Set(["NetworkPolicy", "ClusterNetworkPolicy"]);

function meta(o: Wire) {
  const m = o.metadata ?? {};
  return {
    name: m.name,
    ...(m.namespace ? { namespace: m.namespace } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    uid: m.uid,
    resourceVersion: m.resourceVersion,
    // A string on the wire (the package types it as a Date it would have parsed).
    ...(m.creationTimestamp ? { creationTimestamp: m.creationTimestamp } : {}),
  };
}

function trimMeta(o: Wire): Wire {
  return { kind: o.kind, metadata: meta(o) };
}

/** Only what a named port needs of a container: policies name its ports. */
function containerPorts(cs: unknown): { ports: { name?: string; containerPort: unknown; protocol?: string }[] }[] | undefined {
  if (!Array.isArray(cs)) return undefined;
  const out = cs
    .map((c: { ports?: unknown }) => (Array.isArray(c?.ports) ? c.ports : []).filter((p: { name?: unknown }) => typeof p?.name === "string" && p.name !== ""))
    .filter((ps) => ps.length)
    .map((ps) => ({ ports: ps.map((p: { name: string; containerPort: unknown; protocol?: string }) => ({ name: p.name, containerPort: p.containerPort, ...(p.protocol ? { protocol: p.protocol } : {}) })) }));
  return out.length ? out : undefined;
}

/** A Pod as mncni reads it: where it runs, its IPs, its labels and named ports (policy). */
function trimPod(o: Wire): Wire {
  const s = o.status ?? {};
  const containers = containerPorts(o.spec?.containers);
  const initContainers = containerPorts(o.spec?.initContainers);
  return {
    kind: o.kind,
    metadata: meta(o),
    spec: {
      nodeName: o.spec?.nodeName,
      ...(o.spec?.hostNetwork ? { hostNetwork: true } : {}),
      // Named ports only (a port without a name cannot be referred to): most pods keep none.
      ...(containers ? { containers } : {}),
      ...(initContainers ? { initContainers } : {}),
    },
    status: { phase: s.phase, ...(s.podIP ? { podIP: s.podIP } : {}), ...(s.podIPs?.length ? { podIPs: s.podIPs.map((p: { ip: string }) => ({ ip: p.ip })) } : {}) },
  };
}

/** The Node conditions mncni sets (and reads back): NetworkUnavailable, the published pod MTU, the routing backend's data. */
const OWN_CONDITIONS: ReadonlySet<string> = new Set([NETWORK_UNAVAILABLE, POD_MTU_CONDITION, ROUTING_CONDITION]);

/** A Node as mncni reads it: addresses, pod CIDRs, and the conditions mncni sets (its pod MTU among them). */
function trimNode(o: Wire): Wire {
  const sp = o.spec ?? {};
  const st = o.status ?? {};
  const cond = (st.conditions ?? []).filter((c: { type?: string }) => OWN_CONDITIONS.has(c?.type ?? ""));
  return {
    kind: o.kind,
    metadata: meta(o),
    spec: { ...(sp.podCIDR ? { podCIDR: sp.podCIDR } : {}), ...(sp.podCIDRs ? { podCIDRs: sp.podCIDRs } : {}) },
    status: { addresses: st.addresses ?? [], ...(cond.length ? { conditions: cond } : {}) },
  };
}

/** A Service as the proxy reads it: its spec and load-balancer ingress (managedFields, annotations dropped). */
function trimService(o: Wire): Wire {
  const ingress = o.status?.loadBalancer?.ingress;
  return { kind: o.kind, metadata: meta(o), spec: o.spec ?? {}, ...(Array.isArray(ingress) && ingress.length ? { status: { loadBalancer: { ingress } } } : {}) } as Wire;
}

/** An EndpointSlice without its hints and managed fields (its labels name the Service). */
function trimEndpointSlice(o: Wire): Wire {
  const w = o as Wire & { addressType?: string; endpoints?: any[]; ports?: unknown };
  const endpoints = (Array.isArray(w.endpoints) ? w.endpoints : []).map((e) => ({
    addresses: e?.addresses,
    ...(e?.conditions ? { conditions: e.conditions } : {}),
    ...(e?.nodeName ? { nodeName: e.nodeName } : {}),
    ...(e?.zone ? { zone: e.zone } : {}),
    ...(e?.targetRef ? { targetRef: { kind: e.targetRef.kind, namespace: e.targetRef.namespace, name: e.targetRef.name } } : {}),
  }));
  return { kind: o.kind, metadata: meta(o), addressType: w.addressType, endpoints, ...(w.ports ? { ports: w.ports } : {}) } as Wire;
}

export interface KubernetesSourceOptions extends SourceOptions {
  /** How long start() waits for the initial list of every kind before refusing. */
  startTimeoutMs?: number;
  /** Quiet period that coalesces change notifications. */
  debounceMs?: number;
}

export class KubernetesSource implements ClusterSource {
  readonly description: string;
  readonly metrics = new KubeMetrics("mncni_agent_kube");
  private readonly missing = new Set<string>();
  private informers: Informer<Wire>[] = [];
  private client?: KubeClient;
  private condition?: ReturnType<typeof nodeCondition>;
  private podMTU?: ReturnType<typeof nodePodMTU>;
  private routing?: ReturnType<typeof nodeRoutingData>;
  private mtuEvents?: NodeWarningEvents;
  private policyEvents?: NodeWarningEvents;
  private state: ClusterState = buildClusterState([]);
  private dirty = true;
  private onChange?: () => void;
  private timer?: ReturnType<typeof setTimeout>;

  /** kubeconfig: a kubeconfig file; undefined: the in-cluster service account. */
  constructor(private readonly kubeconfig: string | undefined, private readonly opts: KubernetesSourceOptions = {}) {
    this.description = kubeconfig ? `kubernetes:${kubeconfig}` : "kubernetes";
  }

  async start(): Promise<void> {
    const cfg: KubeConfig = loadKubeConfig(this.kubeconfig);
    this.client = new KubeClient(cfg, { userAgent: "mncni-agent", onRetry: ({ method }) => this.metrics.retry(method) });
    const report = this.informerMetrics();
    for (const { resource, trim } of [...WATCHED, ...(this.opts.services ? SERVICE_WATCHED : [])]) {
      const kind = resource.kind;
      const inf = new Informer<Wire>(this.client, resource, {
        // Lists omit kind on their items; the state builder reads it.
        transform: (o) => (trim ? trim({ ...o, kind }) : { ...o, kind }),
        metrics: report,
        log: { warn: (m) => console.error(`mncni agent: ${m}`), info: () => {} },
      });
      // A failing watch starts a pass too (the snapshot turns stale: not ready, /readyz says why),
      // and so does its recovery, which may bring no object change to start one otherwise.
      inf.on({ add: this.changed, update: this.changed, delete: this.changed, synced: this.changed, failing: this.changed, recovered: this.changed });
      this.informers.push(inf);
    }
    const nodes = this.informers.find((i) => i.resource === RESOURCES.nodes)!;
    if (this.opts.nodeName) {
      this.condition = nodeCondition(this.client, this.opts.nodeName, (name) => nodes.get(name));
      this.podMTU = nodePodMTU(this.client, this.opts.nodeName, (name) => nodes.get(name));
      this.condition.register(this.metrics.registry);
      this.podMTU.register(this.metrics.registry);
      this.routing = nodeRoutingData(this.client, this.opts.nodeName, (name) => nodes.get(name));
      this.routing.register(this.metrics.registry);
      this.mtuEvents = new NodeWarningEvents(this.client, this.opts.nodeName, (name) => nodes.get(name));
      this.policyEvents = new NodeWarningEvents(this.client, this.opts.nodeName, (name) => nodes.get(name), "PolicyNotProgrammed");
    }
    for (const i of this.informers) i.start();
    // Every kind listed before the first pass: never an empty cluster. A policy kind not served
    // (404: its CRD missing, or being installed) does not stop the start; it is unknown until
    // listed (snapshot().state.unknown), and policy is not programmed meanwhile.
    const timeoutMs = this.opts.startTimeoutMs ?? 60_000;
    const t0 = Date.now();
    const awaited = (i: Informer<Wire>) => !i.synced && !(MAY_BE_MISSING.has(i.resource.kind) && this.missing.has(i.resource.kind));
    while (this.informers.some(awaited)) {
      if (Date.now() - t0 > timeoutMs) {
        const why = this.informers.filter(awaited).map((i) => `${i.resource.kind}: ${(i.lastError as Error | undefined)?.message ?? "no answer"}`);
        this.close();
        throw new Error(`cannot list cluster state from ${cfg.server} within ${Math.round(timeoutMs / 1000)} s: ${why.join("; ")}`);
      }
      await Bun.sleep(50);
    }
  }

  /** Forwards to the exported metrics and notes which kinds the server does not serve. */
  private informerMetrics(): InformerMetrics {
    const m = this.metrics;
    return {
      watchRestart: (kind: string, reason: RestartReason) => m.watchRestart(kind, reason),
      listed: (kind: string, at: number) => m.listed(kind, at),
      objects: (kind: string, n: number) => m.objects(kind, n),
      missing: (kind: string, missing: boolean) => {
        m.missing(kind, missing);
        this.changed();
        if (missing) this.missing.add(kind);
        else this.missing.delete(kind);
      },
    };
  }

  private changed = (): void => {
    this.dirty = true;
    if (!this.onChange || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onChange?.();
    }, this.opts.debounceMs ?? 100);
  };

  snapshot(): SourceSnapshot {
    if (this.dirty) {
      this.dirty = false;
      const built = buildClusterState(this.informers.flatMap((i) => i.list()) as unknown as KubeObject[]);
      // Never listed: unknown, not empty (the state has none of its objects, which proves nothing).
      const unknown = this.informers.filter((i) => !i.synced).map((i) => ({
        kind: i.resource.kind as (typeof KINDS)[number],
        why: i.lastError === undefined ? "not listed yet" : isNotFound(i.lastError) ? `${i.resource.group || "core"}/${i.resource.version} ${i.resource.plural} is not served (404)` : (i.lastError as Error).message,
      }));
      this.state = unknown.length ? { ...built, unknown } : built;
    }
    // Listed once, failing now (a 404 too: a CRD removed): the last good state is kept, stale.
    const failing = this.informers.filter((i) => i.synced && i.lastError !== undefined);
    if (!failing.length) return { state: this.state };
    return { state: this.state, stale: failing.map((i) => `cannot watch ${i.resource.plural}: ${(i.lastError as Error).message}`).join("; ") };
  }

  watch(onChange: () => void): void {
    this.onChange = onChange;
  }

  dataPlaneReady(ready: boolean): void {
    if (ready) this.condition?.ensure("False");
  }

  publishPodMTU(mtu: number): void {
    this.podMTU?.ensure(String(mtu));
  }

  publishRouting(data: Readonly<Record<string, string>>): void {
    this.routing?.ensure(encodeRoutingData(data));
  }

  reportPodMTUMismatch(mismatches: readonly string[]): void {
    this.mtuEvents?.report(mismatches);
  }

  reportPolicyRejected(rejected: readonly string[]): void {
    this.policyEvents?.report(rejected);
  }

  /** The informers' metrics and the Node patches' counts (the agent merges it into its /metrics). */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  close(): void {
    clearTimeout(this.timer);
    this.onChange = undefined;
    this.condition?.close();
    this.podMTU?.close();
    this.routing?.close();
    for (const i of this.informers) void i.stop();
  }
}
