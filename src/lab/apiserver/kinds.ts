// The resources the lab API server serves: built-in kinds, plus the ClusterNetworkPolicy
// kind read from the CRD mncni ships (src/deploy/crd.ts), so the lab serves what users install.
import { clusterNetworkPolicyCRD } from "../../deploy/crd.ts";

export type Obj = { apiVersion?: string; kind?: string; metadata?: Record<string, any>; spec?: any; status?: any; [k: string]: any };

export interface Kind {
  plural: string;
  singular: string;
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  /** Has a status subresource: the main resource does not write status, /status writes only status. */
  status: boolean;
  /** A custom resource: no strategic merge patch (as kube-apiserver), validated by its schema. */
  custom?: { schema: Record<string, any>; columns: { name: string; type: string; jsonPath: string }[] };
}

const builtin = (plural: string, kind: string, group: string, version: string, namespaced: boolean, shortNames: string[], status: boolean): Kind =>
  ({ plural, singular: kind.toLowerCase(), group, version, kind, namespaced, shortNames, status });

function crdKind(): Kind {
  const crd = clusterNetworkPolicyCRD().object as any;
  const v = crd.spec.versions[0];
  const n = crd.spec.names;
  return {
    plural: n.plural, singular: n.singular, group: crd.spec.group, version: v.name, kind: n.kind,
    namespaced: crd.spec.scope === "Namespaced", shortNames: n.shortNames ?? [], status: !!v.subresources?.status,
    custom: { schema: v.schema.openAPIV3Schema, columns: v.additionalPrinterColumns ?? [] },
  };
}

export const KINDS: readonly Kind[] = [
  builtin("namespaces", "Namespace", "", "v1", false, ["ns"], true),
  builtin("nodes", "Node", "", "v1", false, ["no"], true),
  builtin("pods", "Pod", "", "v1", true, ["po"], true),
  builtin("services", "Service", "", "v1", true, ["svc"], true),
  builtin("events", "Event", "", "v1", true, ["ev"], false),
  builtin("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", true, [], false),
  builtin("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", true, ["netpol"], false),
  builtin("leases", "Lease", "coordination.k8s.io", "v1", true, [], false),
  crdKind(),
];

export const apiVersionOf = (k: Kind): string => (k.group ? `${k.group}/${k.version}` : k.version);

export function kindOf(group: string, version: string, plural: string): Kind | undefined {
  return KINDS.find((k) => k.group === group && k.version === version && k.plural === plural);
}

export function kindByPlural(plural: string): Kind {
  const k = KINDS.find((x) => x.plural === plural);
  if (!k) throw new Error(`the lab API server does not serve ${plural}`);
  return k;
}
