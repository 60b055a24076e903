// The lab's Services, as the API server and the cloud provider would make them: `lab service
// add` builds a Service, admission gives it cluster IPs (the lab's Service CIDRs), node ports
// (30000–32767) and, for a LoadBalancer, an address from the lab's pool written to
// status.loadBalancer.ingress (the lab's router routes it to the nodes). Services are written
// through `lab apply`'s path (k8s-objects.ts), so they land where the agents read.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseManifests } from "../cluster/index.ts";
import type { KubeService, Protocol, ServicePort } from "../cluster/index.ts";
import { normalizeIP } from "../net/cidr.ts";
import type { LabState } from "./state.ts";
import { manifestsDir } from "./topology.ts";
import { labClient, onKubernetes } from "./control-plane.ts";
import { RESOURCES } from "../kube/index.ts";
import type { Obj } from "./apiserver/kinds.ts";

/** The lab's Service CIDRs (kube-apiserver's --service-cluster-ip-range), one per family. */
export const SERVICE_CIDR = "10.96.0.0/16";
export const SERVICE_CIDR6 = "fd00:96::/108";
/** LoadBalancer addresses the lab hands out (documentation ranges: they exist only in the lab). */
export const LB_POOL = "198.51.100.0/24";
export const LB_POOL6 = "2001:db8:100::/64";
export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;
/** The first cluster IP handed out: below it, addresses a cluster keeps for itself (10.96.0.1 the API, 10.96.0.10 DNS by convention). */
const FIRST_CLUSTER_IP = 11;

export type LabServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";

export interface ServiceSpecOptions {
  namespace: string;
  name: string;
  selector: Record<string, string>;
  ports: ServicePort[];
  type: LabServiceType;
  affinity?: "ClientIP";
  /** externalTrafficPolicy of a NodePort or LoadBalancer, internalTrafficPolicy of a ClusterIP Service. */
  trafficPolicy?: "Local";
  headless?: boolean;
  /** A single-stack Service of this family (default: every family of the lab). */
  ipFamily?: "IPv4" | "IPv6";
}

const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * `[NAME=]PORT[:TARGET][/PROTO],...`: TARGET a number or a container port's name (default PORT),
 * PROTO TCP, UDP or SCTP (default TCP). Several ports must be named, as the API requires;
 * unnamed ones get `<proto>-<port>`.
 */
export function parseServicePorts(v: string): ServicePort[] {
  const items = v.split(",").filter((x) => x !== "");
  if (items.length === 0) throw new Error(`cannot use --port "${v}": expected [NAME=]PORT[:TARGET][/PROTO],...`);
  const ports = items.map((item): ServicePort => {
    const m = /^(?:([^=]+)=)?(\d+)(?::([^/]+))?(?:\/(TCP|UDP|SCTP))?$/i.exec(item);
    if (!m) throw new Error(`cannot use --port item "${item}": expected [NAME=]PORT[:TARGET][/PROTO], e.g. http=80:8080/TCP`);
    const [, name, port, target, proto] = m;
    const n = Number(port);
    if (n < 1 || n > 65535) throw new Error(`cannot use --port "${item}": port ${port} must be 1..65535`);
    if (name !== undefined && (name.length > 15 || !PORT_NAME.test(name) || !/[a-z]/.test(name))) throw new Error(`cannot use --port name "${name}": at most 15 lower case alphanumerics and '-', with a letter`);
    let targetPort: number | string = n;
    if (target !== undefined) {
      if (/^\d+$/.test(target)) {
        targetPort = Number(target);
        if (targetPort < 1 || targetPort > 65535) throw new Error(`cannot use --port "${item}": target port ${target} must be 1..65535`);
      } else if (target.length > 15 || !PORT_NAME.test(target) || !/[a-z]/.test(target)) {
        throw new Error(`cannot use --port "${item}": target "${target}" is neither a port number nor a container port name`);
      } else targetPort = target;
    }
    return { ...(name ? { name } : {}), port: n, targetPort, protocol: (proto ?? "TCP").toUpperCase() as Protocol };
  });
  if (ports.length > 1) for (const p of ports) p.name ??= `${p.protocol!.toLowerCase()}-${p.port}`;
  const seen = new Set<string>();
  for (const p of ports) {
    const key = `${p.port}/${p.protocol}`;
    if (seen.has(key) || (p.name && seen.has(`name:${p.name}`))) throw new Error(`cannot use --port "${v}": ${seen.has(key) ? `port ${key}` : `name "${p.name}"`} given twice`);
    seen.add(key);
    if (p.name) seen.add(`name:${p.name}`);
  }
  return ports;
}

export const serviceFile = (namespace: string, name: string) => `service-${namespace}.${name}.yaml`;

/**
 * The lab's Services where the agents read them: the API server (so a Service kubectl created
 * is seen too), or the manifests directory.
 */
export async function labServices(s: LabState): Promise<KubeService[]> {
  if (onKubernetes(s)) return (await labClient(s).listAll<Obj & { metadata: { name: string } }>(RESOURCES.services)).items.map((o) => ({ ...o, apiVersion: "v1", kind: "Service" }) as unknown as KubeService);
  const dir = manifestsDir(s.name);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^service-.*\.yaml$/.test(n)).sort();
  } catch {
    return [];
  }
  return names.flatMap((n) => parseManifests(readFileSync(join(dir, n), "utf8"), n).objects.filter((o): o is KubeService => o.kind === "Service"));
}

export async function findService(s: LabState, ref: string): Promise<KubeService> {
  const [namespace, name] = splitRef(ref);
  const all = await labServices(s);
  const svc = all.find((o) => (o.metadata.namespace ?? "default") === namespace && o.metadata.name === name);
  if (!svc) throw new Error(`cannot find Service "${namespace}/${name}" in lab "${s.name}" (Services: ${all.map((o) => `${o.metadata.namespace ?? "default"}/${o.metadata.name}`).join(", ") || "none"})`);
  return svc;
}

/** "NS/NAME" (or "NAME" in default). */
export function splitRef(ref: string): [string, string] {
  const parts = ref.split("/");
  if (parts.length > 2 || parts.some((p) => p === "")) throw new Error(`cannot use Service "${ref}": expected NAMESPACE/NAME`);
  const [namespace, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : ["default", parts[0]!];
  for (const [what, v] of [["namespace", namespace], ["name", name]] as const) {
    if (v.length > 63 || !DNS_LABEL.test(v)) throw new Error(`cannot use Service ${what} "${v}": must be a DNS label (lower case alphanumerics and '-', starting with a letter, at most 63)`);
  }
  return [namespace, name];
}

/** The Service object `lab service add` writes, before admission. */
export function serviceObject(o: ServiceSpecOptions): KubeService {
  const external = o.type !== "ClusterIP";
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      type: o.type,
      selector: o.selector,
      ports: o.ports,
      ...(o.headless ? { clusterIP: "None" } : {}),
      ...(o.ipFamily ? { ipFamilies: [o.ipFamily], ipFamilyPolicy: "SingleStack" as const } : {}),
      sessionAffinity: o.affinity ?? "None",
      ...(o.affinity ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } } : {}),
      // --traffic-policy: the policy of the Service's own kind of traffic (external for NodePort and LoadBalancer).
      ...(o.trafficPolicy && !external ? { internalTrafficPolicy: "Local" as const } : {}),
      ...(external ? { externalTrafficPolicy: o.trafficPolicy ?? "Cluster" } : {}),
    },
  };
}

/**
 * The lab API server's admission of Services (a Service kubectl creates gets its cluster IPs,
 * node ports and LoadBalancer address as it would from kube-apiserver and a cloud), with the
 * lab's families read from its state at each write.
 */
export function serviceAdmission(lab: string, state: (lab: string) => LabState | null): (kind: string, obj: Obj, others: Obj[]) => Obj {
  return (kind, obj, others) => {
    const s = kind === "Service" ? state(lab) : null;
    return s ? (admitService(s, obj as unknown as KubeService, others as unknown as KubeService[]) as unknown as Obj) : obj;
  };
}

/** The address n above a CIDR's base (n inside the CIDR: the callers' ranges are). */
function v4At(cidr: string, n: number): string {
  const v = cidr.split("/")[0]!.split(".").reduce((a, o) => a * 256 + Number(o), 0) + n;
  return [24, 16, 8, 0].map((sh) => Math.floor(v / 2 ** sh) % 256).join(".");
}
const v6At = (cidr: string, n: number) => normalizeIP(`${cidr.split("::")[0]}::${n.toString(16)}`)!;

function lowestFree(used: Set<string>, at: (n: number) => string, from: number, to: number, what: string): string {
  for (let n = from; n <= to; n++) if (!used.has(at(n))) return at(n);
  throw new Error(`cannot allocate ${what}: all taken`);
}

/**
 * Admission, as kube-apiserver's allocators and a cloud's LoadBalancer controller: cluster IPs
 * (one per family of the lab), node ports and a LoadBalancer address, each the lowest free one;
 * what the Service already has (a re-apply) is kept. Returns a new object.
 */
export function admitService(s: LabState, svc: KubeService, others: KubeService[]): KubeService {
  const out: KubeService = structuredClone(svc);
  const spec = (out.spec ??= {});
  const id = `${svc.metadata.namespace ?? "default"}/${svc.metadata.name}`;
  const rest = others.filter((o) => `${o.metadata.namespace ?? "default"}/${o.metadata.name}` !== id);
  const labFamilies: ("IPv4" | "IPv6")[] = s.options.clusterCidr6 !== undefined ? ["IPv4", "IPv6"] : ["IPv4"];
  // A SingleStack Service keeps the one family it asks for (the lab's first by default); otherwise every family of the lab.
  const single = spec.ipFamilyPolicy === "SingleStack";
  const asked = (spec.ipFamilies ?? []).filter((f) => labFamilies.includes(f));
  if (spec.ipFamilies?.length && asked.length === 0) throw new Error(`cannot admit Service "${id}": ipFamilies ${spec.ipFamilies.join(",")} not in this lab (${labFamilies.join(",")})`);
  const families = single ? [asked[0] ?? labFamilies[0]!] : [...asked, ...labFamilies.filter((f) => !asked.includes(f))];
  const type = spec.type ?? "ClusterIP";
  if (spec.clusterIP !== "None" && type !== "ExternalName" && !spec.clusterIPs?.length && !spec.clusterIP) {
    const used = new Set(rest.flatMap((o) => o.spec?.clusterIPs ?? (o.spec?.clusterIP ? [o.spec.clusterIP] : [])));
    const ips = families.map((f) => (f === "IPv4"
      ? lowestFree(used, (n) => v4At(SERVICE_CIDR, n), FIRST_CLUSTER_IP, 65534, `a cluster IP in ${SERVICE_CIDR}`)
      : lowestFree(used, (n) => v6At(SERVICE_CIDR6, n), FIRST_CLUSTER_IP, 0xffff, `a cluster IP in ${SERVICE_CIDR6}`)));
    spec.clusterIP = ips[0];
    spec.clusterIPs = ips;
  } else if (spec.clusterIP === "None") {
    spec.clusterIPs = ["None"];
  }
  spec.ipFamilies = families;
  spec.ipFamilyPolicy = families.length > 1 ? "PreferDualStack" : "SingleStack";
  if (type === "NodePort" || type === "LoadBalancer") {
    const used = new Set(rest.flatMap((o) => [...(o.spec?.ports ?? []).map((p) => p.nodePort), o.spec?.healthCheckNodePort]).filter((n): n is number => n !== undefined));
    const take = () => {
      for (let n = NODE_PORT_RANGE.min; n <= NODE_PORT_RANGE.max; n++) if (!used.has(n)) return (used.add(n), n);
      throw new Error(`cannot allocate a node port for "${id}": ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max} all taken`);
    };
    for (const p of spec.ports ?? []) if (p.nodePort !== undefined) used.add(p.nodePort);
    for (const p of spec.ports ?? []) p.nodePort ??= take();
    if (type === "LoadBalancer" && spec.externalTrafficPolicy === "Local") spec.healthCheckNodePort ??= take();
  }
  if (type === "LoadBalancer" && !out.status?.loadBalancer?.ingress?.length) {
    const used = new Set(rest.flatMap((o) => (o.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "")));
    const ips = families.map((f) => (f === "IPv4"
      ? lowestFree(used, (n) => v4At(LB_POOL, n), 1, 254, `a LoadBalancer address in ${LB_POOL}`)
      : lowestFree(used, (n) => v6At(LB_POOL6, n), 1, 0xffff, `a LoadBalancer address in ${LB_POOL6}`)));
    out.status = { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: "VIP" as const })) } };
  }
  return out;
}

