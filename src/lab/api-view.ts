// What the lab's API server holds about the lab's nodes and pods, for `lab status` and `lab pods`
// on the kubernetes source: kubectl can change labels (and the controller chose the pod CIDRs),
// so the API, not the lab's record, is what they report.
import { RESOURCES } from "../kube/index.ts";
import type { Obj } from "./apiserver/kinds.ts";
import { labClient, onKubernetes } from "./control-plane.ts";
import type { LabState } from "./state.ts";

export interface ApiView {
  /** namespace/name -> labels */
  podLabels: Map<string, Record<string, string>>;
  /** namespace/name -> status.phase */
  podPhase: Map<string, string>;
  /** node -> spec.podCIDRs */
  podCIDRs: Map<string, string[]>;
}

/** undefined on the dir source, or when the API server does not answer (the record is shown then). */
export async function apiView(s: LabState): Promise<ApiView | undefined> {
  if (!onKubernetes(s)) return undefined;
  const c = labClient(s);
  try {
    const [pods, nodes] = await Promise.all([c.listAll<Obj & { metadata: { name: string } }>(RESOURCES.pods), c.listAll<Obj & { metadata: { name: string } }>(RESOURCES.nodes)]);
    const key = (o: Obj) => `${o.metadata?.namespace}/${o.metadata?.name}`;
    return {
      podLabels: new Map(pods.items.map((p) => [key(p), { ...p.metadata?.labels }])),
      podPhase: new Map(pods.items.map((p) => [key(p), p.status?.phase ?? "Pending"])),
      podCIDRs: new Map(nodes.items.map((n) => [n.metadata.name, n.spec?.podCIDRs ?? []])),
    };
  } catch {
    return undefined;
  }
}
