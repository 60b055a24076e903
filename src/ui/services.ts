// Services as the page shows them, read from a cluster state that carries them (the Service
// sources fill `services`); an empty list when the state has none.
import { labelsMatch } from "../cluster/index.ts";
import type { ClusterState } from "../cluster/types.ts";
import type { UiService } from "./model.ts";

/** The fields of a Service the page shows: a structural view, whatever else the state's type holds. */
interface ServiceLike {
  metadata?: { name?: string; namespace?: string };
  name?: string;
  namespace?: string;
  spec?: { type?: string; clusterIP?: string; clusterIPs?: string[]; selector?: Record<string, string>; ports?: { port?: number; protocol?: string; targetPort?: number | string; nodePort?: number }[] };
}

export function uiServices(state: ClusterState | undefined): UiService[] {
  const services = (state as { services?: ReadonlyMap<string, ServiceLike> } | undefined)?.services;
  if (!services || typeof services.values !== "function") return [];
  const pods = [...(state?.pods.values() ?? [])];
  return [...services.values()].map((svc) => {
    const name = svc.metadata?.name ?? svc.name ?? "?";
    const namespace = svc.metadata?.namespace ?? svc.namespace ?? "default";
    const spec = svc.spec ?? {};
    const selector = spec.selector;
    return {
      namespace, name, type: spec.type ?? "ClusterIP",
      clusterIPs: spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []),
      ports: (spec.ports ?? []).map((p) => `${p.port ?? "?"}/${p.protocol ?? "TCP"}${p.targetPort !== undefined ? `→${p.targetPort}` : ""}${p.nodePort ? ` (node ${p.nodePort})` : ""}`),
      ...(selector ? { selector } : {}),
      backends: selector && Object.keys(selector).length ? pods.filter((p) => p.namespace === namespace && !p.hostNetwork && labelsMatch({ matchLabels: selector }, p.labels)).map((p) => `${p.namespace}/${p.name}`) : [],
    };
  });
}
