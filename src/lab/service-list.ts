// The lab's Services as `lab service list` and `lab status` report them: addresses, ports
// (with node ports and targets), options, and the endpoints their EndpointSlices hold.
import type { KubeEndpointSlice, KubeService } from "../cluster/index.ts";
import { SERVICE_NAME_LABEL } from "../cluster/index.ts";
import { labEndpointSlices } from "./endpoint-slices.ts";
import { labServices } from "./services.ts";
import type { LabState } from "./state.ts";

export interface LabServicePort {
  name: string;
  port: number;
  protocol: string;
  targetPort: number | string;
  nodePort?: number;
}

export interface LabServiceEndpoint {
  address: string;
  /** "namespace/name" of the Pod. */
  pod?: string;
  node?: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** The ports this endpoint serves (name -> number), from its slice. */
  ports: Record<string, number>;
}

export interface LabService {
  namespace: string;
  name: string;
  type: string;
  /** Empty for a headless Service. */
  clusterIPs: string[];
  headless: boolean;
  loadBalancerIPs: string[];
  ports: LabServicePort[];
  selector: Record<string, string>;
  sessionAffinity: "None" | "ClientIP";
  externalTrafficPolicy?: string;
  internalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  endpoints: LabServiceEndpoint[];
}

/** One Service with the endpoints of the given slices. */
export function describeService(svc: KubeService, slices: KubeEndpointSlice[]): LabService {
  const ns = svc.metadata.namespace ?? "default";
  const sp = svc.spec ?? {};
  const headless = sp.clusterIP === "None";
  const mine = slices.filter((sl) => (sl.metadata.namespace ?? "default") === ns && sl.metadata.labels?.[SERVICE_NAME_LABEL] === svc.metadata.name);
  return {
    namespace: ns,
    name: svc.metadata.name,
    type: sp.type ?? "ClusterIP",
    clusterIPs: headless ? [] : (sp.clusterIPs ?? (sp.clusterIP ? [sp.clusterIP] : [])),
    headless,
    loadBalancerIPs: (svc.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])),
    ports: (sp.ports ?? []).map((p) => ({ name: p.name ?? "", port: p.port, protocol: p.protocol ?? "TCP", targetPort: p.targetPort ?? p.port, ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
    selector: { ...sp.selector },
    sessionAffinity: sp.sessionAffinity === "ClientIP" ? "ClientIP" : "None",
    ...(sp.externalTrafficPolicy ? { externalTrafficPolicy: sp.externalTrafficPolicy } : {}),
    ...(sp.internalTrafficPolicy ? { internalTrafficPolicy: sp.internalTrafficPolicy } : {}),
    ...(sp.healthCheckNodePort ? { healthCheckNodePort: sp.healthCheckNodePort } : {}),
    endpoints: mine.flatMap((sl) =>
      (sl.endpoints ?? []).flatMap((e) => e.addresses.map((address) => {
        const ready = e.conditions?.ready !== false;
        return {
          address,
          ...(e.targetRef?.name ? { pod: `${e.targetRef.namespace ?? ns}/${e.targetRef.name}` } : {}),
          ...(e.nodeName ? { node: e.nodeName } : {}),
          ready,
          serving: e.conditions?.serving ?? ready,
          terminating: e.conditions?.terminating === true,
          ports: Object.fromEntries((sl.ports ?? []).flatMap((p) => (p.port ? [[p.name ?? "", p.port]] : []))),
        };
      })),
    ),
  };
}

export async function listServices(s: LabState): Promise<LabService[]> {
  const [services, slices] = await Promise.all([labServices(s), labEndpointSlices(s)]);
  return services.map((svc) => describeService(svc, slices));
}
