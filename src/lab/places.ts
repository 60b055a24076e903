// The lab seen by the insight functions of src/obs/: a lab node as a NodeView (its
// directories and namespace), every namespace a packet can be in as a Place, endpoints by the
// lab's names (node1/pod2, node1, ext, or an address of one of them), and the cluster state
// its agents read. `mncni lab inspect | explain | trace` render what obs/ computes from these.
import { readClusterState } from "../obs/policy-view.ts";
import { pickAddr } from "../obs/explain-places.ts";
import type { Endpoint, Place } from "../obs/explain.ts";
import { nodeView, type NodeView } from "../cni/node-view.ts";
import type { ClusterState, SourceOptions } from "../cluster/types.ts";
import { addrOf } from "../net/ip.ts";
import { hostVethName } from "../plugin/hostveth.ts";
import { findNode, labPodRef, podOnNode, type LabState, type NodeState } from "./state.ts";
import { labSourceSpec } from "./control-plane.ts";
import { EXTERNAL, EXTERNAL6, manifestsDir, nodePaths, ns } from "./topology.ts";
import { isIP } from "node:net";

export function labNodeView(s: LabState, node: string): NodeView {
  if (!s.nodes.some((n) => n.name === node)) throw new Error(`cannot find node "${node}" in lab "${s.name}": nodes are ${s.nodes.map((n) => n.name).join(", ")}`);
  const p = nodePaths(s.name, node);
  return nodeView({ name: node, netns: `/run/netns/${ns.node(s.name, node)}`, confDir: p.confDir, cacheDir: p.cacheDir, logFile: p.cniLog });
}

/** The cluster state the lab's agents read (its API server, or their manifests directory); none when it cannot be read. */
export async function labCluster(s: LabState, opts: SourceOptions = {}): Promise<ClusterState | undefined> {
  try {
    // With the fast path, a Service backend's reason to take the stack is in its EndpointSlices.
    return await readClusterState(labSourceSpec(s, manifestsDir(s.name)), { ...(s.options.fastPath ? { services: true } : {}), ...opts });
  } catch {
    // A lab without manifests (static wiring): no policy to name, as on a node without --source.
    return undefined;
  }
}

/** Every namespace of the lab a packet can be in (the switch only bridges: left out). */
export function labPlaces(s: LabState): Place[] {
  const at = (n: string) => `/run/netns/${n}`;
  return [
    ...s.nodes.map((n) => ({ name: n.name, netns: at(n.ns), kind: "node" as const })),
    ...s.nodes.flatMap((n) => {
      const network = labNodeView(s, n.name).network;
      return n.pods.map((p) => ({ name: labPodRef(n, p), netns: at(p.ns), kind: "pod" as const, node: n.name, hostVeth: hostVethName(network, p.containerId, p.ifname) }));
    }),
    { name: "rtr", netns: at(ns.router(s.name)), kind: "router" as const },
    { name: "ext", netns: at(ns.external(s.name)), kind: "external" as const },
  ];
}

/**
 * node1/pod2 (or node1/z/web: the web of namespace z), node1, ext, or an address of one of
 * them; with `outside`, also any other address (a destination on the internet: the path goes
 * as far as the lab routes it).
 */
export function labEndpoint(s: LabState, places: Place[], what: string, v6 = false, o: { outside?: boolean } = {}): Endpoint {
  // A pod by any reference the lab takes: its place is named by the lab's name for it (labPodRef).
  const slash = what.indexOf("/");
  const node = slash > 0 ? s.nodes.find((n) => n.name === what.slice(0, slash)) : undefined;
  const pod = node ? podOnNode(node, what.slice(slash + 1)) : undefined;
  if (node && pod) return { place: places.find((p) => p.name === labPodRef(node, pod))!, ip: pickAddr(pod.ips, v6) };
  const place = places.find((p) => p.name === what);
  if (place) {
    // A node's IPv6 source: the kernel's choice (the lab records its IPv4 address only).
    if (place.kind === "node") return { place, ip: v6 ? "" : s.nodes.find((n) => n.name === what)!.address };
    if (place.kind === "external") return { place, ip: v6 && s.options.clusterCidr6 ? EXTERNAL6.host : EXTERNAL.host };
    return { place, ip: "" };
  }
  for (const n of s.nodes) {
    if (n.address === what) return { place: places.find((p) => p.name === n.name)!, ip: what };
    for (const p of n.pods) if (p.ips.some((i) => addrOf(i) === what)) return { place: places.find((x) => x.name === labPodRef(n, p))!, ip: what };
  }
  if (what === EXTERNAL.host || what === EXTERNAL6.host) return { place: places.find((p) => p.kind === "external")!, ip: what };
  if (o.outside && isIP(what)) return { ip: what };
  throw new Error(`cannot find "${what}" in lab "${s.name}": not a node, node/pod, ext or one of their addresses`);
}

/** node1, node1/pod2, node1-pod2, ext, rtr, sw, or a namespace name of the lab: its namespace. */
export function labNamespace(s: LabState, target: string): string {
  const fixed: Record<string, string> = { ext: ns.external(s.name), rtr: ns.router(s.name), sw: ns.switch(s.name) };
  if (fixed[target]) return fixed[target]!;
  if (s.namespaces.includes(target)) return target;
  // A pod's namespace is its sandbox's: the lab's name for it, or the runtime's (containerd: cni-<uuid>).
  for (const n of s.nodes) {
    const pod = (target.startsWith(`${n.name}/`) ? podOnNode(n, target.slice(n.name.length + 1)) : undefined) ?? n.pods.find((p) => target === `${n.name}-${p.name}` || target === p.ns);
    if (pod) return pod.ns;
  }
  const candidate = `${s.name}-${target.replace("/", "-")}`;
  if (s.namespaces.includes(candidate)) return candidate;
  throw new Error(`cannot find "${target}" in lab "${s.name}": not a node, pod (node/pod), ext, rtr or sw`);
}

/** A node of the lab by name; an error naming the lab's nodes when there is none. */
export function labNode(s: LabState, name: string): NodeState {
  const node = findNode(s, name);
  if (!node) throw new Error(`cannot find node "${name}" in lab "${s.name}" (nodes: ${s.nodes.map((n) => n.name).join(", ") || "none"})`);
  return node;
}
