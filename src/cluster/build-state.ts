// Builds the typed, immutable ClusterState from parsed Kubernetes objects.
import type {
  ClusterState, EndpointSliceInfo, InvalidManifest, KubeClusterNetworkPolicy, KubeNetworkPolicy, ServiceInfo, NamedPort, KubeNode, KubeObject, KubePod, NamespaceInfo, NodeInfo, PodInfo,
} from "./types.ts";
import { POD_MTU_CONDITION } from "./types.ts";
import { normalizeCIDR, normalizeIP } from "../net/cidr.ts";
import { routingDataOf } from "./node-routing.ts";
import { endpointSliceInfo, serviceInfo } from "./service-state.ts";
import { GcPacer } from "../sys/gc-pace.ts";

export function nodeInfo(n: KubeNode): NodeInfo {
  const problems: string[] = [];
  const internalIPs: string[] = [];
  for (const a of n.status?.addresses ?? []) {
    if (a?.type !== "InternalIP") continue;
    const ip = typeof a.address === "string" ? normalizeIP(a.address) : undefined;
    if (ip) internalIPs.push(ip);
    else problems.push(`InternalIP "${a.address}" is not an IP address`);
  }
  const raw = n.spec?.podCIDRs?.length ? n.spec.podCIDRs : n.spec?.podCIDR ? [n.spec.podCIDR] : [];
  const podCIDRs: string[] = [];
  for (const c of raw) {
    try {
      podCIDRs.push(normalizeCIDR(String(c)));
    } catch (e) {
      problems.push(`podCIDR "${c}": ${(e as Error).message}`);
    }
  }
  const created = typeof n.metadata.creationTimestamp === "string" ? n.metadata.creationTimestamp : undefined;
  const rawMTU = n.status?.conditions?.find((c) => c?.type === POD_MTU_CONDITION)?.message;
  let podMTU: number | undefined;
  if (rawMTU !== undefined) {
    const v = Number(rawMTU);
    // 68 is the smallest MTU IPv4 allows; an unparsable value is reported, never compared.
    if (/^\d+$/.test(String(rawMTU)) && v >= 68 && v <= 65535) podMTU = v;
    else problems.push(`condition ${POD_MTU_CONDITION} "${rawMTU}" is not an MTU (68..65535)`);
  }
  const routing = routingDataOf(n);
  return { name: n.metadata.name, internalIPs, podCIDRs, ...(created ? { created } : {}), ...(podMTU !== undefined ? { podMTU } : {}), ...(routing ? { routing } : {}), problems };
}

/** Named container ports; an unnamed or malformed port cannot be referred to and is skipped. */
function namedPorts(p: KubePod): NamedPort[] {
  const out: NamedPort[] = [];
  for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])]) {
    for (const port of Array.isArray(c?.ports) ? c.ports : []) {
      const n = Number(port?.containerPort);
      if (typeof port?.name !== "string" || port.name === "" || !Number.isInteger(n) || n < 1 || n > 65535) continue;
      const protocol = port.protocol === "UDP" || port.protocol === "SCTP" ? port.protocol : "TCP";
      out.push({ name: port.name, port: n, protocol });
    }
  }
  return out;
}

function podInfo(p: KubePod): PodInfo {
  const ips = p.status?.podIPs?.length ? p.status.podIPs.map((x) => x?.ip) : p.status?.podIP ? [p.status.podIP] : [];
  return {
    namespace: p.metadata.namespace ?? "default",
    name: p.metadata.name,
    labels: { ...p.metadata.labels },
    nodeName: p.spec?.nodeName,
    podIPs: ips.map((ip) => (typeof ip === "string" ? normalizeIP(ip) : undefined)).filter((ip): ip is string => !!ip),
    hostNetwork: p.spec?.hostNetwork === true,
    namedPorts: namedPorts(p),
    ...(typeof p.status?.phase === "string" ? { phase: p.status.phase } : {}),
    ...(typeof p.metadata.creationTimestamp === "string" ? { created: p.metadata.creationTimestamp } : {}),
  };
}

/**
 * The typed view of each object, kept while the object lives: sources keep unchanged objects
 * from one snapshot to the next, so their views are the same objects too, and the policy
 * engine tells what changed by identity instead of comparing thousands of pods.
 */
type View = PodInfo | KubeNetworkPolicy | ServiceInfo | EndpointSliceInfo;
const views = new WeakMap<object, View>();
/** A first state of 10,000 Services makes 20,000 views (sys/gc-pace.ts). */
const pacer = new GcPacer(2000);
function view<T extends View>(o: object, make: () => T): T {
  let v = views.get(o) as T | undefined;
  if (!v) {
    views.set(o, (v = make()));
    pacer.tick();
  }
  return v;
}

export function buildClusterState(objects: Iterable<KubeObject>, invalid: InvalidManifest[] = []): ClusterState {
  const nodes = new Map<string, NodeInfo>();
  const pods = new Map<string, PodInfo>();
  const namespaces = new Map<string, NamespaceInfo>();
  const networkPolicies = new Map<string, KubeNetworkPolicy>();
  const clusterNetworkPolicies = new Map<string, KubeClusterNetworkPolicy>();
  const services = new Map<string, ServiceInfo>();
  const endpointSlices = new Map<string, EndpointSliceInfo>();
  const problems = [...invalid];
  const seen = new Set<string>();
  for (const o of objects) {
    const ns = o.metadata.namespace ?? "default";
    const key = o.kind === "Node" || o.kind === "Namespace" || o.kind === "ClusterNetworkPolicy" ? o.metadata.name : `${ns}/${o.metadata.name}`;
    // The same object in two files is ambiguous; the first one read wins, the clash is reported.
    if (seen.has(`${o.kind}/${key}`)) {
      problems.push({ file: "", error: `duplicate ${o.kind} "${key}": later copies ignored` });
      continue;
    }
    seen.add(`${o.kind}/${key}`);
    switch (o.kind) {
      case "Node": nodes.set(key, nodeInfo(o)); break;
      case "Pod": pods.set(key, view(o, () => podInfo(o))); break;
      case "Namespace": namespaces.set(key, { name: key, labels: { ...o.metadata.labels } }); break;
      case "NetworkPolicy": networkPolicies.set(key, view(o, () => ({ ...o, metadata: { ...o.metadata, namespace: ns } }))); break;
      case "ClusterNetworkPolicy": clusterNetworkPolicies.set(key, o); break;
      case "Service": services.set(key, view(o, () => serviceInfo(o))); break;
      case "EndpointSlice": endpointSlices.set(key, view(o, () => endpointSliceInfo(o))); break;
    }
  }
  return { nodes, pods, namespaces, networkPolicies, clusterNetworkPolicies, services, endpointSlices, invalid: problems };
}
