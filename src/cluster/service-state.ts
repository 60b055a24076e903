// Services and EndpointSlices as the proxy reads them: addresses normalised, defaults filled
// in as the API defines them (a port's protocol TCP, targetPort = port, an absent `ready`
// true, an absent `serving` = ready), and what cannot be used reported, not guessed.
import { normalizeIP } from "../net/cidr.ts";
import type { EndpointInfo, EndpointSliceInfo, KubeEndpointSlice, KubeService, Protocol, ServiceInfo, ServicePortInfo, ServiceType } from "./types.ts";
import { SERVICE_NAME_LABEL } from "./types.ts";

/** sessionAffinityConfig.clientIP.timeoutSeconds when absent (the API's default: 3 hours). */
export const DEFAULT_AFFINITY_SECONDS = 10800;

const TYPES: readonly ServiceType[] = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
const protocolOf = (p: unknown): Protocol => (p === "UDP" || p === "SCTP" ? p : "TCP");
const isPort = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;

/** The IPs of a list, normalised; each unusable one is a problem. */
function ips(list: unknown, what: string, problems: string[]): string[] {
  // Already normalised and unique (what the API hands out): the list itself, not a copy per
  // endpoint (100,000 of them at 10,000 Services). The state is never mutated.
  if (Array.isArray(list) && list.length === 1 && typeof list[0] === "string" && normalizeIP(list[0]) === list[0]) return list as string[];
  const out: string[] = [];
  for (const a of Array.isArray(list) ? list : []) {
    const ip = typeof a === "string" ? normalizeIP(a) : undefined;
    if (ip) {
      if (!out.includes(ip)) out.push(ip);
    } else problems.push(`${what} "${a}" is not an IP address`);
  }
  return out;
}

export function serviceInfo(o: KubeService): ServiceInfo {
  const sp = o.spec ?? {};
  const problems: string[] = [];
  const type = TYPES.includes(sp.type as ServiceType) ? (sp.type as ServiceType) : "ClusterIP";
  if (sp.type !== undefined && type !== sp.type) problems.push(`type "${sp.type}" is not a Service type: read as ClusterIP`);
  const headless = sp.clusterIP === "None" || (sp.clusterIPs?.[0] === "None");
  const clusterIPs = headless || type === "ExternalName" ? [] : ips(sp.clusterIPs?.length ? sp.clusterIPs : sp.clusterIP ? [sp.clusterIP] : [], "clusterIP", problems);
  const ports: ServicePortInfo[] = [];
  for (const p of Array.isArray(sp.ports) ? sp.ports : []) {
    if (!isPort(p?.port)) {
      problems.push(`port ${JSON.stringify(p?.port)} is not a port number: skipped`);
      continue;
    }
    const t = p.targetPort;
    const targetPort = t === undefined || t === "" ? p.port : typeof t === "string" && /^\d+$/.test(t) ? Number(t) : t;
    if (typeof targetPort === "number" && !isPort(targetPort)) {
      problems.push(`port ${p.port}: targetPort ${targetPort} is not a port number: skipped`);
      continue;
    }
    const nodePort = (type === "NodePort" || type === "LoadBalancer") && isPort(p.nodePort) ? p.nodePort : undefined;
    ports.push({ name: typeof p.name === "string" ? p.name : "", protocol: protocolOf(p.protocol), port: p.port, targetPort, ...(nodePort ? { nodePort } : {}) });
  }
  const ingress = (o.status?.loadBalancer?.ingress ?? []).filter((i) => i?.ip && i.ipMode !== "Proxy").map((i) => i.ip);
  const affinity = sp.sessionAffinity === "ClientIP";
  const timeout = sp.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  const affinitySeconds = affinity ? (isPositive(timeout) ? Math.min(timeout, 86400) : DEFAULT_AFFINITY_SECONDS) : undefined;
  const local = sp.externalTrafficPolicy === "Local" && (type === "NodePort" || type === "LoadBalancer");
  return {
    namespace: o.metadata.namespace ?? "default",
    name: o.metadata.name,
    type,
    clusterIPs,
    headless,
    ports,
    externalIPs: orEmpty(ips(sp.externalIPs, "externalIP", problems)),
    loadBalancerIPs: type === "LoadBalancer" ? orEmpty(ips(ingress, "loadBalancer ingress IP", problems)) : EMPTY,
    ...(affinitySeconds !== undefined ? { affinitySeconds } : {}),
    externalTrafficPolicy: local ? "Local" : "Cluster",
    internalTrafficPolicy: sp.internalTrafficPolicy === "Local" ? "Local" : "Cluster",
    ...(local && type === "LoadBalancer" && isPort(sp.healthCheckNodePort) ? { healthCheckNodePort: sp.healthCheckNodePort } : {}),
    ...(sp.selector && typeof sp.selector === "object" ? { selector: { ...sp.selector } } : {}),
    problems: orEmpty(problems),
  };
}

const isPositive = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n > 0;

/**
 * The empty list every view without problems, external or load-balancer IPs shares (frozen:
 * views are never mutated). An empty array literal kept is ~64 bytes: three per Service were
 * ~2 MB at 10,000 Services.
 */
const EMPTY = Object.freeze([]) as unknown as string[];
const orEmpty = (list: string[]) => (list.length ? list : EMPTY);

export function endpointSliceInfo(o: KubeEndpointSlice): EndpointSliceInfo {
  const addressType = o.addressType === "IPv6" || o.addressType === "FQDN" ? o.addressType : "IPv4";
  const endpoints: EndpointInfo[] = [];
  for (const e of Array.isArray(o.endpoints) ? o.endpoints : []) {
    const addresses = addressType === "FQDN" ? [] : ips(e?.addresses, "address", []);
    if (!addresses.length) continue;
    const c = e.conditions ?? {};
    const ready = c.ready !== false;
    const ref = e.targetRef;
    // Fields set one by one, not spread: no temporary object per optional field. nodeName (nearly
    // always there) in the literal: a field added afterwards takes an out-of-line slot, 16
    // bytes more per endpoint (1.6 MB at 100,000 endpoints).
    const serving = c.serving ?? ready;
    const terminating = c.terminating === true;
    const ep: EndpointInfo = typeof e.nodeName === "string" ? { addresses, ready, serving, terminating, nodeName: e.nodeName } : { addresses, ready, serving, terminating };
    if (typeof e.zone === "string") ep.zone = e.zone;
    if (ref?.kind === "Pod" && ref.name) ep.pod = `${ref.namespace ?? o.metadata.namespace ?? "default"}/${ref.name}`;
    endpoints.push(ep);
  }
  const ports = (Array.isArray(o.ports) ? o.ports : []).map((p) => ({ name: typeof p?.name === "string" ? p.name : "", protocol: protocolOf(p?.protocol), ...(isPort(p?.port) ? { port: p.port } : {}) }));
  return {
    namespace: o.metadata.namespace ?? "default",
    name: o.metadata.name,
    service: o.metadata.labels?.[SERVICE_NAME_LABEL] ?? "",
    addressType,
    endpoints,
    ports,
  };
}
