// The lab's record of what it created, written ahead of each creation so `lab down` can undo
// a half-built lab. One JSON file per lab, replaced atomically.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Protocol } from "../cluster/index.ts";
import type { Mode } from "../plugin/netconf.ts";
import { listLabs, type LabEntry } from "./inventory.ts";
import { LAB_ROOT, labDir, stateFile } from "./topology.ts";

export type WiringKind = "agent" | "static";
/** Where the agents read the cluster: the lab's API server (kubernetes), or its manifests directory (dir). */
export type LabSource = "kubernetes" | "dir";
export type LabRouting = "host-gw" | "vxlan" | "auto";
/** How pod sandboxes are made (src/lab/pod-runtime.ts). */
export type RuntimeKind = "direct" | "containerd";

export interface LabOptions {
  mode: Mode;
  /** Absent in states written before the lab had an API server: dir. */
  source?: LabSource;
  /** Passed to the agents (--routing); static wiring is host-gw. */
  routing: LabRouting;
  /** Underlay subnets (each its own switch) joined by the router; absent: 1. */
  segments?: number;
  clusterCidr: string;
  nodeCidrSize: number;
  /** Set in a dual-stack lab (--ipv6): the IPv6 cluster CIDR, split into /64 per node. */
  clusterCidr6?: string;
  wiring: WiringKind;
  /** The mncni executable the agents run (required for agent wiring). */
  binary?: string;
  /** argv prefix that runs this program's CLI (echo server, probe). */
  selfCmd: string[];
  /** `lab up --policy-ports`: every pod serves ports 80 and 81 over TCP, UDP and SCTP (the upstream policy model). */
  policyPorts?: boolean;
  /** `lab up --runtime`: how pod sandboxes are made; absent: direct. */
  runtime?: RuntimeKind;
  /** `lab up --sandbox-gc-grace`: passed to the agents; absent: the agent's default. */
  sandboxGcGrace?: number;
  /** `lab up --fast-path on`: the agents run with the eBPF fast path. */
  fastPath?: boolean;
}

export interface HostPort {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

export interface PodState {
  /**
   * The lab's name of the pod (`pod2`, `web`): unique on its node within its Kubernetes
   * namespace. References: `node1/web`, or `node1/z/web` (always accepted, and how the lab
   * shows a pod whose name another pod of the node shares: labPodRef).
   */
  name: string;
  /** The Pod's metadata.name; absent: `<node>-<name>` (the default namespace's, pods the lab named podN, and pods of older labs). */
  k8sName?: string;
  node: string;
  ns: string;
  /** Kubernetes namespace of the Pod manifest. */
  namespace: string;
  containerId: string;
  /** The runtime's sandbox ID (containerd's; the direct runtime has none). */
  sandboxId?: string;
  ifname: string;
  ips: string[];
  addMs?: number;
  /** Labels of the Pod manifest beyond the lab's own (app, node); `lab label pod` changes them. */
  labels?: Record<string, string>;
  /** Named container ports of the Pod manifest (`--ports NAME=PORT/PROTO`), for named ports in policies. */
  ports?: { name: string; containerPort: number; protocol: Protocol }[];
  /** The Pod's UID, given to the runtime as kubelet gives it (containerd's sandbox metadata). */
  uid?: string;
  /** hostPort mappings of the pod (`--host-port`), which the runtime hands to the chain as portMappings. */
  hostPorts?: HostPort[];
  /** The pod's kubernetes.io/ingress-bandwidth and egress-bandwidth annotations (`--ingress-bandwidth`), quantities in bit/s. */
  bandwidth?: { ingress?: string; egress?: string };
  /** The policy-ports server of this pod (policyPorts labs). */
  serverPid?: number;
}

export interface NodeState {
  name: string;
  index: number;
  ns: string;
  address: string;
  /** The underlay segment (switch) the node is on; absent: 0. */
  segment?: number;
  /** The node's IPv6 underlay address in a dual-stack lab. */
  address6?: string;
  /** IPv4 first, then IPv6 in a dual-stack lab. */
  podCidrs: string[];
  /** Index of the pod CIDR inside the cluster CIDR (the lab's node IPAM). */
  cidrIndex: number;
  /**
   * The pod MTU the node's agent wrote into its conflist, which the lab publishes on the Node
   * manifest (status condition MncniPodMTU) as the agent does on a Kubernetes Node; absent until known.
   */
  podMTU?: number;
  agentPid?: number;
  /** The node's containerd (`lab up --runtime containerd`). */
  containerdPid?: number;
  /** The echo server listening in this node's pods. */
  echoPid?: number;
  pods: PodState[];
  /**
   * Pods whose ADD failed and whose rollback DEL failed too: their addresses stay reserved
   * until a DEL succeeds, which the lab tries again before each pod add or remove on the node
   * (a runtime retries a failed DEL the same way). Absent: none.
   */
  pendingDel?: (PodState & { delError: string })[];
}

export interface LabState {
  name: string;
  createdAt: string;
  /**
   * false from the start of `up` until it finished: a lab whose `up` was interrupted shows as
   * incomplete. Absent in states written before the marker existed (complete).
   */
  complete?: boolean;
  options: LabOptions;
  /** Every namespace created or about to be created, in creation order. */
  namespaces: string[];
  extEchoPid?: number;
  /** The lab's API server and its controller replicas (kubernetes source). */
  apiserverPid?: number;
  controllerPids?: number[];
  /** The lab's DNS server (src/lab/dns/lab-dns.ts), in the router's namespace. */
  dnsPid?: number;
  nodes: NodeState[];
}

export function loadState(lab: string): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(lab), "utf8")) as LabState;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`cannot read lab state "${stateFile(lab)}": ${(e as Error).message}`);
  }
}

export function requireState(lab: string): LabState {
  const s = loadState(lab);
  if (!s) throw new Error(`cannot find lab "${lab}" under ${LAB_ROOT}: not running (start it with \`mncni lab up --name ${lab}\`)\n${describeLabs(listLabs())}`);
  return s;
}

/** One line per lab that exists, saying where; for "cannot find lab" messages. */
function describeLabs(labs: LabEntry[]): string {
  if (labs.length === 0) return "no lab exists on this machine";
  const where = (l: LabEntry) =>
    l.root === null ? "namespaces only: created under another MNCNI_LAB_ROOT, or its state was removed" : l.current ? l.root : `${l.root}: use MNCNI_LAB_ROOT=${l.root}`;
  return ["labs that exist:", ...labs.map((l) => `  ${l.name} (${where(l)})`)].join("\n");
}

export function saveState(s: LabState): void {
  mkdirSync(labDir(s.name), { recursive: true });
  const f = stateFile(s.name);
  writeFileSync(`${f}.tmp`, JSON.stringify(s, null, 2));
  renameSync(`${f}.tmp`, f);
}

export function labExists(lab: string): boolean {
  return existsSync(stateFile(lab));
}

/** Records a namespace before it is created (write-ahead). */
export function noteNamespace(s: LabState, name: string): void {
  if (!s.namespaces.includes(name)) {
    s.namespaces.push(name);
    saveState(s);
  }
}

/** The address families the lab runs: [4], or [4, 6] with --ipv6. */
export function families(s: LabState): (4 | 6)[] {
  return s.options.clusterCidr6 ? [4, 6] : [4];
}

/** A node's underlay addresses, one per family of the lab. */
export function nodeAddresses(node: NodeState): string[] {
  return node.address6 ? [node.address, node.address6] : [node.address];
}

/** The node's underlay address of a family (the host-gw gateway, the masquerade source). */
export function nodeAddressOf(node: NodeState, family: 4 | 6): string | undefined {
  return family === 4 ? node.address : node.address6;
}

export function findNode(s: LabState, name: string): NodeState | undefined {
  return s.nodes.find((n) => n.name === name);
}

export function allPods(s: LabState): PodState[] {
  return s.nodes.flatMap((n) => n.pods);
}

/**
 * How the lab names a pod of a node (places, check rows, `lab pods`): `node1/web`, and
 * `node1/z/web` for a pod of namespace z when another pod of the node is also called web (the
 * default namespace's keeps the short form).
 */
export function labPodRef(node: Pick<NodeState, "name" | "pods">, p: PodState): string {
  const shared = p.namespace !== "default" && node.pods.some((o) => o !== p && o.name === p.name);
  return shared ? `${node.name}/${p.namespace}/${p.name}` : `${node.name}/${p.name}`;
}

/**
 * The pod of a node a reference after `node/` names: `web` (the default namespace's, else the
 * only one of that name on the node) or `z/web`; undefined when none (or ambiguous: said).
 */
export function podOnNode(node: Pick<NodeState, "name" | "pods">, ref: string): PodState | undefined {
  const slash = ref.indexOf("/");
  if (slash > 0) return node.pods.find((p) => p.namespace === ref.slice(0, slash) && p.name === ref.slice(slash + 1));
  const named = node.pods.filter((p) => p.name === ref);
  if (named.length <= 1) return named[0];
  const dflt = named.find((p) => p.namespace === "default");
  if (dflt) return dflt;
  throw new Error(`cannot find pod "${node.name}/${ref}": ambiguous (${named.map((p) => `${node.name}/${p.namespace}/${p.name}`).join(", ")}); name it with its namespace`);
}
