// Which endpoints a Service port uses, as kube-proxy chooses them
// (pkg/proxy/topology.go, CategorizeEndpoints): the ready ones; when none is ready, the
// serving ones that are terminating (so a rollout's last pods keep answering); the same rule
// again among this node's own for the Local policies. The port comes from the EndpointSlice
// port of the Service port's name: the endpoint-slice controller has resolved a named
// targetPort per pod, so two endpoints of one Service may listen on different ports.
import type { ClusterState, EndpointSliceInfo, Protocol, ServiceInfo, ServicePortInfo } from "../../cluster/types.ts";

export type Family = 4 | 6;

export interface Backend {
  ip: string;
  port: number;
  /** On this node (its EndpointSlice nodeName). */
  local: boolean;
  /** "namespace/name" of its pod, when the slice says. */
  pod?: string;
}

/** One port of one Service in one family, with the endpoints it uses. */
export interface ServicePortView {
  service: ServiceInfo;
  port: ServicePortInfo;
  family: Family;
  /** "namespace/name:port/PROTO", stable across passes (slots are kept per id). */
  id: string;
  /** The endpoints every client may use (Cluster policies). */
  all: Backend[];
  /** This node's own (the Local policies). */
  local: Backend[];
}

export const familyOf = (ip: string): Family => (ip.includes(":") ? 6 : 4);

/** The EndpointSlices of each Service, "namespace/name" -> slices (one index per slices map). */
const slicesIndex = new WeakMap<ClusterState["endpointSlices"], Map<string, EndpointSliceInfo[]>>();
export function slicesByService(state: ClusterState): Map<string, EndpointSliceInfo[]> {
  let idx = slicesIndex.get(state.endpointSlices);
  if (!idx) {
    idx = new Map();
    for (const s of state.endpointSlices.values()) {
      if (!s.service) continue;
      const k = `${s.namespace}/${s.service}`;
      const list = idx.get(k);
      if (list) list.push(s);
      else idx.set(k, [s]);
    }
    slicesIndex.set(state.endpointSlices, idx);
  }
  return idx;
}

/** Whether the proxy handles the Service at all: headless and ExternalName ones are DNS only. */
export const proxied = (s: ServiceInfo): boolean => !s.headless && s.type !== "ExternalName" && s.clusterIPs.length > 0;

/** Every proxied Service port in every family of its cluster IPs, with its endpoints. */
export function servicePortViews(state: ClusterState, nodeName: string): ServicePortView[] {
  const idx = slicesByService(state);
  return [...state.services].flatMap(([key, svc]) => portViews(key, svc, idx.get(key) ?? [], nodeName));
}

/** One Service's ports in every family of its cluster IPs. */
export function portViews(key: string, svc: ServiceInfo, slices: readonly EndpointSliceInfo[], nodeName: string): ServicePortView[] {
  if (!proxied(svc)) return [];
  const out: ServicePortView[] = [];
  const families = [...new Set(svc.clusterIPs.map(familyOf))];
  for (const port of svc.ports) {
    for (const family of families) {
      const cands = candidates(slices, port.name, port.protocol, family, nodeName);
      out.push({ service: svc, port, family, id: `${key}:${port.port}/${port.protocol}`, all: usable(cands), local: usable(cands.filter((c) => c.b.local)) });
    }
  }
  return out;
}

interface Candidate {
  b: Backend;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

function candidates(slices: readonly EndpointSliceInfo[], portName: string, protocol: Protocol, family: Family, nodeName: string): Candidate[] {
  const type = family === 4 ? "IPv4" : "IPv6";
  const out: Candidate[] = [];
  for (const s of slices) {
    if (s.addressType !== type) continue;
    const p = s.ports.find((x) => x.name === portName && x.protocol === protocol);
    if (p?.port === undefined) continue;
    for (const e of s.endpoints) {
      // One endpoint, one address: the API allows more, but every consumer uses the first.
      const b: Backend = { ip: e.addresses[0]!, port: p.port, local: e.nodeName === nodeName };
      if (e.pod) b.pod = e.pod;
      out.push({ b, ready: e.ready, serving: e.serving, terminating: e.terminating });
    }
  }
  const before = (a: Candidate, b: Candidate) => (a.b.ip === b.b.ip ? a.b.port - b.b.port : a.b.ip < b.b.ip ? -1 : 1);
  for (let i = 1; i < out.length; i++) {
    if (before(out[i - 1]!, out[i]!) > 0) {
      out.sort(before); // stable: of equal endpoints, the first seen stays first
      break;
    }
  }
  // The same endpoint twice (in two slices during a slice split): the readier view wins, else the first.
  let n = 0;
  for (let i = 0; i < out.length; i++) {
    const c = out[i]!;
    const had = n > 0 ? out[n - 1]! : undefined;
    if (had && had.b.ip === c.b.ip && had.b.port === c.b.port) {
      if (!had.ready && c.ready) out[n - 1] = c;
      continue;
    }
    out[n++] = c;
  }
  out.length = n;
  return out;
}

/** Ready ones; none ready: the serving terminating ones. */
function usable(cs: Candidate[]): Backend[] {
  const ready = cs.filter((c) => c.ready);
  return (ready.length ? ready : cs.filter((c) => c.serving && c.terminating)).map((c) => c.b);
}
