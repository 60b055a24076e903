// What the endpoint-slice controller writes for a Service: the EndpointSlices of the pods of
// its namespace its selector matches, one slice per address family and set of resolved target
// ports (a named targetPort may resolve differently per pod), with kube-controller-manager's
// conditions (ready, serving, terminating), at most 100 endpoints a slice (kube's default
// --max-endpoints-per-slice), packed into the current slices as kube's reconciler packs them.
// Pure: `mncni controller --endpoint-slices` feeds it from its informers, the lab from its own
// record (dir source) or the API (to wait for the controller); both get the same slices, named
// deterministically (<service>-ipv4[-n]).
import { labelsMatch } from "./selector.ts";
import { SERVICE_NAME_LABEL, type Endpoint, type EndpointPort, type KubeEndpointSlice, type KubePod, type KubeService, type ServicePort } from "./types.ts";

/** The label the endpoint-slice controller puts on the slices it manages (others are left alone). */
export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const MANAGED_BY = "endpointslice-controller.k8s.io";

/** A pod as an endpoint: what the slices say of it. */
export interface EndpointPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Its addresses (status.podIPs); none: not an endpoint yet. */
  ips: string[];
  node?: string;
  /** Container ports, for named targetPorts. */
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  /** The Pod's Ready condition. */
  ready: boolean;
  /** Being deleted (deletionTimestamp): terminating, serving while still ready. */
  terminating: boolean;
}

/** The port a Service port reaches on a pod: a number, or the pod's container port of that name (undefined: the pod has none). */
function targetOn(pod: EndpointPod, p: ServicePort): number | undefined {
  const t = p.targetPort ?? p.port;
  if (typeof t === "number") return t;
  return pod.ports?.find((c) => c.name === t && (c.protocol ?? "TCP") === (p.protocol ?? "TCP"))?.containerPort;
}

/** Whether the controller writes slices for this Service (a selector; headless ones too, DNS reads them). */
export const hasSelector = (svc: KubeService): boolean => !!svc.spec?.selector && Object.keys(svc.spec.selector).length > 0 && svc.spec.type !== "ExternalName";

/** Whether a Service selects a pod. */
export const selects = (svc: KubeService, pod: Pick<EndpointPod, "namespace" | "labels">): boolean =>
  hasSelector(svc) && pod.namespace === (svc.metadata.namespace ?? "default") && labelsMatch({ matchLabels: svc.spec!.selector }, pod.labels);

/** kube-controller-manager's default for --max-endpoints-per-slice. */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;
/** The API's limit on a slice's endpoints (and kube-controller-manager's on the flag). */
export const MAX_ENDPOINTS_PER_SLICE = 1000;

/** The endpoints of one address family and one set of resolved ports: what may share a slice. */
interface Group {
  family: 4 | 6;
  ports: EndpointPort[];
  /** In pod-name order. */
  endpoints: Endpoint[];
}

const canonicalPorts = (ports: readonly EndpointPort[] | undefined) => (ports ?? []).map((p) => [p.name ?? "", p.protocol ?? "TCP", p.port ?? null]);
const groupKey = (family: 4 | 6, ports: readonly EndpointPort[] | undefined) => `${family} ${JSON.stringify(canonicalPorts(ports))}`;
/** Which endpoint it is (kube hashes addresses and the target's name): its content may change, it stays the same endpoint. */
const endpointKey = (e: Endpoint) => `${(e.addresses ?? []).join(",")} ${e.targetRef?.namespace ?? ""}/${e.targetRef?.name ?? ""}`;

/** The endpoints of a Service, grouped (one group per family and resolved target ports). */
function endpointGroups(svc: KubeService, pods: readonly EndpointPod[]): Group[] {
  const ports = svc.spec?.ports ?? [];
  const groups = new Map<string, Group>();
  const ordered = pods.filter((p) => p.ips.length > 0 && selects(svc, p)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const pod of ordered) {
    const eps: EndpointPort[] = ports.flatMap((p) => {
      const port = targetOn(pod, p);
      return port === undefined ? [] : [{ name: p.name ?? "", protocol: p.protocol ?? "TCP", port }];
    });
    for (const ip of pod.ips) {
      const family = ip.includes(":") ? 6 : 4;
      const g = groupKey(family, eps);
      if (!groups.has(g)) groups.set(g, { family, ports: eps, endpoints: [] });
      groups.get(g)!.endpoints.push({
        addresses: [ip],
        conditions: { ready: pod.ready && !pod.terminating, serving: pod.ready, terminating: pod.terminating },
        ...(pod.node ? { nodeName: pod.node } : {}),
        targetRef: { kind: "Pod", namespace: pod.namespace, name: pod.name },
      });
    }
  }
  return [...groups.values()];
}

/**
 * The slices a Service should have now ([] for one without a selector), at most
 * `maxEndpoints` endpoints each, packed from its `current` slices as kube-controller-manager's
 * endpointslice reconciler does, so that a change rewrites as few slices as it can: an
 * endpoint stays in the slice it is in (its content brought up to date), one gone leaves its
 * slice (a slice left empty is deleted), new ones fill the slices being written anyway
 * (fullest first), then new slices; a last part smaller than a slice goes into the unchanged
 * slice it fits best (one write instead of a create). Settled slices are a fixed point: packed
 * again from themselves they come out the same (the lab checks the controller's work so).
 * `current` may hold other Services' slices (left out). New slices are named
 * `<service>-ipv4`, then `<service>-ipv4-1`, ... (the first name no current slice has).
 */
export function desiredSlices(svc: KubeService, pods: readonly EndpointPod[], current: readonly KubeEndpointSlice[] = [], maxEndpoints = DEFAULT_MAX_ENDPOINTS_PER_SLICE): KubeEndpointSlice[] {
  if (!hasSelector(svc)) return [];
  const ns = svc.metadata.namespace ?? "default";
  const mine = current
    .filter((sl) => (sl.metadata.namespace ?? "default") === ns && sl.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name && sl.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY)
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const taken = new Set(mine.map((sl) => sl.metadata.name));
  const newName = (family: 4 | 6) => {
    const base = `${svc.metadata.name}-ipv${family}`;
    let name = base;
    for (let n = 1; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    return name;
  };
  const slice = (name: string, g: Group, endpoints: Endpoint[]): KubeEndpointSlice => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace: ns, labels: { [SERVICE_NAME_LABEL]: svc.metadata.name, [MANAGED_BY_LABEL]: MANAGED_BY } },
    addressType: g.family === 4 ? "IPv4" : "IPv6",
    endpoints,
    ports: g.ports,
  });
  const out: KubeEndpointSlice[] = [];
  for (const g of endpointGroups(svc, pods)) {
    const key = groupKey(g.family, g.ports);
    const wanted = new Map(g.endpoints.map((e) => [endpointKey(e), e]));
    const unchanged: KubeEndpointSlice[] = [];
    const updated: KubeEndpointSlice[] = [];
    // 1. The group's current slices keep the endpoints still wanted (as they are now), up to the cap.
    for (const cur of mine) {
      if (groupKey(cur.addressType === "IPv6" ? 6 : 4, cur.ports) !== key || (cur.addressType !== "IPv4" && cur.addressType !== "IPv6")) continue;
      const kept: Endpoint[] = [];
      for (const e of cur.endpoints ?? []) {
        const k = endpointKey(e);
        const w = wanted.get(k);
        if (!w || kept.length >= maxEndpoints) continue;
        kept.push(w);
        wanted.delete(k);
      }
      if (!kept.length) continue;
      const next = slice(cur.metadata.name, g, kept);
      (sliceContent(next) === sliceContent(cur) ? unchanged : updated).push(next);
    }
    const rest = [...wanted.values()];
    // 2. What is left fills the slices written anyway, fullest first.
    updated.sort((a, b) => b.endpoints!.length - a.endpoints!.length);
    for (const sl of updated) while (rest.length && sl.endpoints!.length < maxEndpoints) sl.endpoints!.push(rest.shift()!);
    // 3. Then new slices; a last part smaller than a slice into the unchanged slice it fits best.
    const created: KubeEndpointSlice[] = [];
    while (rest.length) {
      let target: KubeEndpointSlice | undefined;
      if (rest.length < maxEndpoints) {
        const fits = unchanged.filter((sl) => sl.endpoints!.length + rest.length <= maxEndpoints).sort((a, b) => b.endpoints!.length - a.endpoints!.length);
        target = fits[0];
        if (target) unchanged.splice(unchanged.indexOf(target), 1);
      }
      target ??= slice(newName(g.family), g, []);
      while (rest.length && target.endpoints!.length < maxEndpoints) target.endpoints!.push(rest.shift()!);
      created.push(target);
    }
    out.push(...unchanged, ...updated, ...created);
  }
  return out.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

/**
 * What the controller sets on a slice (not what the server adds: uid, resourceVersion,
 * timestamps), field by field and labels sorted, so that a slice read back from any API server
 * (Go writes struct fields in its own order, map keys sorted) compares equal to the one
 * written: equal means nothing to write.
 */
export const sliceContent = (o: KubeEndpointSlice): string =>
  JSON.stringify([
    Object.entries(o.metadata.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    o.addressType,
    (o.endpoints ?? []).map((e) => [e.addresses ?? [], e.conditions?.ready ?? null, e.conditions?.serving ?? null, e.conditions?.terminating ?? null, e.nodeName ?? null, e.targetRef ? [e.targetRef.kind ?? "", e.targetRef.namespace ?? "", e.targetRef.name ?? ""] : null]),
    canonicalPorts(o.ports),
  ]);

/** A Pod object as an endpoint: Ready condition, deletionTimestamp, podIPs, node, container ports. */
export function podEndpoint(p: KubePod): EndpointPod {
  const st = p.status;
  const ips = st?.podIPs?.map((x) => x.ip) ?? (st?.podIP ? [st.podIP] : []);
  const done = st?.phase === "Succeeded" || st?.phase === "Failed";
  return {
    namespace: p.metadata.namespace ?? "default",
    name: p.metadata.name,
    labels: p.metadata.labels ?? {},
    ips: done ? [] : ips,
    node: p.spec?.nodeName,
    ports: p.spec?.containers?.flatMap((c) => c.ports ?? []),
    ready: (st?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
    terminating: !!p.metadata.deletionTimestamp,
  };
}
