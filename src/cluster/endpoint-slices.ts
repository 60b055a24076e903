// What the endpoint-slice controller writes for a Service: the EndpointSlices of the pods of
// its namespace its selector matches, one slice per address family and set of resolved target
// ports (a named targetPort may resolve differently per pod), with kube-controller-manager's
// conditions (ready, serving, terminating). Pure: `mncni controller --endpoint-slices` feeds it
// from its informers, the lab from its own record (dir source) or the API (to wait for the
// controller); both get the same slices, named deterministically (<service>-ipv4[-n]).
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

/** The slices a Service should have now ([] for one without a selector). */
export function desiredSlices(svc: KubeService, pods: readonly EndpointPod[]): KubeEndpointSlice[] {
  if (!hasSelector(svc)) return [];
  const ns = svc.metadata.namespace ?? "default";
  const ports = svc.spec?.ports ?? [];
  const groups = new Map<string, { family: 4 | 6; ports: EndpointPort[]; endpoints: Endpoint[] }>();
  const ordered = pods.filter((p) => p.ips.length > 0 && selects(svc, p)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const pod of ordered) {
    const eps: EndpointPort[] = ports.flatMap((p) => {
      const port = targetOn(pod, p);
      return port === undefined ? [] : [{ name: p.name ?? "", protocol: p.protocol ?? "TCP", port }];
    });
    for (const ip of pod.ips) {
      const family = ip.includes(":") ? 6 : 4;
      const g = `${family} ${JSON.stringify(eps)}`;
      if (!groups.has(g)) groups.set(g, { family, ports: eps, endpoints: [] });
      groups.get(g)!.endpoints.push({
        addresses: [ip],
        conditions: { ready: pod.ready && !pod.terminating, serving: pod.ready, terminating: pod.terminating },
        ...(pod.node ? { nodeName: pod.node } : {}),
        targetRef: { kind: "Pod", namespace: pod.namespace, name: pod.name },
      });
    }
  }
  const perFamily = { 4: 0, 6: 0 };
  return [...groups.values()].map((g) => {
    const n = perFamily[g.family]++;
    return {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${svc.metadata.name}-ipv${g.family}${n ? `-${n}` : ""}`,
        namespace: ns,
        labels: { [SERVICE_NAME_LABEL]: svc.metadata.name, [MANAGED_BY_LABEL]: MANAGED_BY },
      },
      addressType: g.family === 4 ? "IPv4" : "IPv6",
      endpoints: g.endpoints,
      ports: g.ports,
    } satisfies KubeEndpointSlice;
  });
}

/** What the controller sets on a slice (not what the server adds: uid, resourceVersion, timestamps): equal means nothing to write. */
export const sliceContent = (o: KubeEndpointSlice): string => JSON.stringify([o.metadata.labels ?? {}, o.addressType, o.endpoints ?? [], o.ports ?? []]);

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
