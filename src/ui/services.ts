// Services as the page shows them: type, addresses, ports, and the pods behind each (its
// EndpointSlices' ready endpoints; the selector's pods where no slice names them yet).
import { labelsMatch } from "../cluster/index.ts";
import type { ClusterState } from "../cluster/types.ts";
import type { UiService } from "./model.ts";

export function uiServices(state: ClusterState | undefined): UiService[] {
  if (!state) return [];
  const slicePods = new Map<string, string[]>();
  for (const sl of state.endpointSlices.values()) {
    const key = `${sl.namespace}/${sl.service}`;
    const list = slicePods.get(key) ?? [];
    for (const e of sl.endpoints) if (e.ready && e.pod && !list.includes(e.pod)) list.push(e.pod);
    slicePods.set(key, list);
  }
  const pods = [...state.pods.values()];
  return [...state.services.values()].map((s) => {
    const key = `${s.namespace}/${s.name}`;
    const bySelector = () => (s.selector && Object.keys(s.selector).length ? pods.filter((p) => p.namespace === s.namespace && !p.hostNetwork && labelsMatch({ matchLabels: s.selector }, p.labels)).map((p) => `${p.namespace}/${p.name}`) : []);
    return {
      namespace: s.namespace, name: s.name, type: s.type, clusterIPs: [...s.clusterIPs, ...s.externalIPs, ...s.loadBalancerIPs],
      ports: s.ports.map((p) => `${p.port}/${p.protocol}→${p.targetPort}${p.nodePort ? ` (node ${p.nodePort})` : ""}`),
      ...(s.selector ? { selector: s.selector } : {}),
      backends: slicePods.get(key)?.length ? slicePods.get(key)! : bySelector(),
    };
  });
}
