// Table responses (meta.k8s.io/v1) for `kubectl get`: the columns kube-apiserver prints for
// the built-in kinds (a subset of them), and a CRD's additionalPrinterColumns.
import type { Kind, Obj } from "./kinds.ts";

interface Column {
  name: string;
  type: string;
  format?: string;
  cell: (o: Obj) => unknown;
}

/** "5m", "3h", "2d", as kubectl's duration.HumanDuration shortens an age. */
export function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return "<unknown>";
  const s = Math.max(0, Math.floor((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const name: Column = { name: "Name", type: "string", format: "name", cell: (o) => o.metadata?.name };
const ageCol: Column = { name: "Age", type: "string", cell: (o) => age(o.metadata?.creationTimestamp) };
const labelsText = (l: Record<string, string> | undefined) => Object.entries(l ?? {}).map(([k, v]) => `${k}=${v}`).join(",") || "<none>";
const selectorText = (s: any) => (s?.matchLabels && Object.keys(s.matchLabels).length ? labelsText(s.matchLabels) : s?.matchExpressions?.length ? "<expressions>" : "<none>");

function nodeStatus(o: Obj): string {
  const ready = (o.status?.conditions ?? []).find((c: any) => c.type === "Ready");
  const s = ready?.status === "True" ? "Ready" : ready ? "NotReady" : "Unknown";
  return o.spec?.unschedulable ? `${s},SchedulingDisabled` : s;
}

function nodeRoles(o: Obj): string {
  const roles = Object.keys(o.metadata?.labels ?? {}).filter((l) => l.startsWith("node-role.kubernetes.io/")).map((l) => l.slice(24));
  return roles.join(",") || "<none>";
}

function podReady(o: Obj): string {
  const cs: any[] = o.status?.containerStatuses ?? [];
  return `${cs.filter((c) => c.ready).length}/${o.spec?.containers?.length ?? 0}`;
}

function jsonPath(o: Obj, p: string): unknown {
  let v: any = o;
  for (const part of p.replace(/^\./, "").split(".")) v = v?.[part];
  return v;
}

const COLUMNS: Record<string, Column[]> = {
  Namespace: [name, { name: "Status", type: "string", cell: (o) => o.status?.phase ?? "Active" }, ageCol],
  Node: [name, { name: "Status", type: "string", cell: nodeStatus }, { name: "Roles", type: "string", cell: nodeRoles }, ageCol,
    { name: "Version", type: "string", cell: (o) => o.status?.nodeInfo?.kubeletVersion ?? "" },
    { name: "Pod-CIDRs", type: "string", cell: (o) => (o.spec?.podCIDRs ?? []).join(",") || "<none>" }],
  Pod: [name, { name: "Ready", type: "string", cell: podReady }, { name: "Status", type: "string", cell: (o) => (o.metadata?.deletionTimestamp ? "Terminating" : o.status?.phase ?? "Pending") },
    { name: "Restarts", type: "string", cell: (o) => String((o.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0)) }, ageCol,
    { name: "IP", type: "string", cell: (o) => o.status?.podIP ?? "<none>" }, { name: "Node", type: "string", cell: (o) => o.spec?.nodeName ?? "<none>" }],
  Service: [name, { name: "Type", type: "string", cell: (o) => o.spec?.type ?? "ClusterIP" }, { name: "Cluster-IP", type: "string", cell: (o) => o.spec?.clusterIP ?? "<none>" },
    { name: "Ports", type: "string", cell: (o) => (o.spec?.ports ?? []).map((p: any) => `${p.port}/${p.protocol ?? "TCP"}`).join(",") || "<none>" }, ageCol],
  Event: [{ name: "Last Seen", type: "string", cell: (o) => age(o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp) },
    { name: "Type", type: "string", cell: (o) => o.type ?? "" }, { name: "Reason", type: "string", cell: (o) => o.reason ?? "" },
    { name: "Object", type: "string", cell: (o) => `${(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}` },
    { name: "Message", type: "string", cell: (o) => (o.message ?? "").trim() }],
  EndpointSlice: [name, { name: "AddressType", type: "string", cell: (o) => o.addressType ?? "" },
    { name: "Endpoints", type: "string", cell: (o) => (o.endpoints ?? []).flatMap((e: any) => e.addresses ?? []).join(",") || "<unset>" }, ageCol],
  NetworkPolicy: [name, { name: "Pod-Selector", type: "string", cell: (o) => selectorText(o.spec?.podSelector) }, ageCol],
  Lease: [name, { name: "Holder", type: "string", cell: (o) => o.spec?.holderIdentity ?? "" }, ageCol],
};

function columnsOf(k: Kind): Column[] {
  if (k.custom) {
    return [name, ...k.custom.columns.map((c): Column => ({
      name: c.name, type: c.type === "date" ? "string" : c.type,
      cell: c.type === "date" ? (o) => age(jsonPath(o, c.jsonPath) as string) : (o) => jsonPath(o, c.jsonPath) ?? "",
    }))];
  }
  return COLUMNS[k.kind] ?? [name, ageCol];
}

export function table(k: Kind, objects: Obj[], resourceVersion: string, withColumns = true): Obj {
  const cols = columnsOf(k);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: withColumns ? cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: "", priority: 0 })) : [],
    rows: objects.map((o) => ({
      cells: cols.map((c) => c.cell(o)),
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}

/** kubectl asks for a Table in its Accept header: `application/json;as=Table;v=v1;g=meta.k8s.io`. */
export const wantsTable = (accept: string | null): boolean => /as=Table;v=v1;g=meta\.k8s\.io/.test(accept ?? "");
