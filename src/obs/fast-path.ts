// Whether a pod, and a flow, take the eBPF fast path, and why not: what the plain-pods map of
// the node holds (the kernel's answer, read by the recorded map ID), with the agent's reasons
// for every pod not in it (src/agent/fast-path/plain.ts, the same function the agent runs)
// when the cluster state is given.
import type { ClusterState } from "../cluster/types.ts";
import type { NodeView } from "../cni/node-view.ts";
import { Netlink, withNetns } from "../kernel/index.ts";
import { closeBpfFd, fdById, HostGwRoutesMap, PlainPodsMap, progInfo } from "../kernel/bpf/index.ts";
import { cidrContains } from "../net/cidr.ts";
import { fastPathPods, type PodFastPath } from "../agent/fast-path/plain.ts";
import { readPodDevices } from "../agent/fast-path/node.ts";
import { systemHold } from "../agent/policy/index.ts";
import { antiSpoofFor } from "../plugin/antispoof.ts";
import { fastPathDir, openRecordedProgram, readRecord } from "../plugin/fast-path.ts";
import { MODES } from "../plugin/modes.ts";
import { isMode } from "../plugin/netconf.ts";
import type { ProbeProto } from "./probe.ts";

export interface NodeFastPath {
  node: string;
  /** The conflist asks for it. */
  on: boolean;
  /** The addresses in the plain-pods map. */
  plain: string[];
  /** The other nodes' pod CIDRs in the host-gw routes map (sent and received across the underlay). */
  hostGw: string[];
  /** The underlay program is loaded (the agent attaches it where host-gw routes leave). */
  underlay: boolean;
  /** Each local pod's decision by each of its addresses (with a cluster state only). */
  pods: Map<string, PodFastPath>;
  /** Why the map could not be read. */
  problem?: string;
}

/** One pod's answer: in the map, or why not. */
export interface PodFastPathView {
  plain: boolean;
  why: string[];
}

export interface FlowFastPath {
  redirected: boolean;
  /** Why it takes the stack (empty when redirected). */
  why: string[];
  /**
   * Across nodes: the destination node's side (its underlay program puts the packet into the
   * pod, its stack does not see it; the reply leaves by its pod program), whatever the source's.
   */
  arrival?: { node: string; redirected: boolean; why: string[] };
}

const inNs = <T>(netns: string | undefined, fn: () => T): T => (netns ? withNetns(netns, fn) : fn());

function mapsOf(v: NodeView): Pick<NodeFastPath, "plain" | "hostGw" | "underlay"> {
  const rec = readRecord(fastPathDir(v.dataDir, v.network));
  const prog = openRecordedProgram(rec);
  if (prog === undefined) return { plain: [], hostGw: [], underlay: false };
  closeBpfFd(prog);
  const map = PlainPodsMap.adopt(fdById("map", rec!.map));
  const hostGw = rec!.hostGw !== undefined ? HostGwRoutesMap.adopt(fdById("map", rec!.hostGw)) : undefined;
  try {
    return { plain: map.ips(), hostGw: hostGw?.list().map((r) => r.cidr) ?? [], underlay: rec!.underlay !== undefined && underlayAlive(rec!.underlay.prog) };
  } finally {
    map.close();
    hostGw?.close();
  }
}

function underlayAlive(id: number): boolean {
  try {
    const fd = fdById("prog", id);
    try {
      progInfo(fd);
      return true;
    } finally {
      closeBpfFd(fd);
    }
  } catch {
    return false;
  }
}

/** The node's fast path as its kernel has it (and, with the cluster, why each other pod is not in it). */
export function nodeFastPath(v: NodeView, cluster?: ClusterState): NodeFastPath {
  const out: NodeFastPath = { node: v.name, on: v.fastPath === true, plain: [], hostGw: [], underlay: false, pods: new Map() };
  try {
    Object.assign(out, mapsOf(v));
  } catch (e) {
    out.problem = `cannot read the plain-pods map: ${(e as Error).message}`;
  }
  if (!cluster || !out.on || !isMode(v.mode)) return out;
  try {
    const mode = v.mode;
    inNs(v.netns, () => {
      using host = Netlink.open();
      const devices = readPodDevices({ host, mode, bridge: v.bridge ?? "cbr0", network: v.network, guarded: () => antiSpoofFor(MODES[mode].antiSpoof).guarded() });
      let held: string[] = [];
      try {
        held = systemHold.held();
      } catch {
        // no hold table: nothing is held
      }
      for (const p of fastPathPods({ state: cluster, nodeName: v.name, held: new Set(held), devices }).values()) for (const ip of p.ips) out.pods.set(ip, p);
    });
  } catch (e) {
    out.problem = `cannot read the pods' devices: ${(e as Error).message}`;
  }
  return out;
}

/** A pod's answer on its node. */
export function podFastPath(n: NodeFastPath, ip: string | undefined): PodFastPathView {
  if (!n.on) return { plain: false, why: ["the fast path is off on this node (agent --fast-path off)"] };
  if (!ip) return { plain: false, why: ["it has no address"] };
  if (n.plain.includes(ip)) return { plain: true, why: [] };
  const why = n.pods.get(ip)?.notPlain ?? [];
  return { plain: false, why: why.length ? why : ["not in the plain-pods map (pass the cluster source to see why; the agent may not have seen it yet)"] };
}

const ICMP_WHY = "ICMP takes the stack (errors and their quoting are the stack's)";
const behind = (n: NodeFastPath, ip: string) => n.hostGw.some((c) => cidrContains(c, `${ip}/${ip.includes(":") ? 128 : 32}`));

/**
 * A flow between two endpoints: redirected between plain pods of one node, for TCP, UDP and
 * SCTP; across nodes over host-gw, from a plain pod out of the underlay on its node, and on the
 * destination's node (`arrival`, its own decision) from the underlay into a plain pod, for TCP
 * and UDP. `dst.node`: the node of the pod the packet is delivered to, when it is a pod's.
 */
export function flowFastPath(src: { ip: string; node?: string }, dst: { ip: string; node?: string }, proto: ProbeProto, nodes: ReadonlyMap<string, NodeFastPath>): FlowFastPath {
  const why: string[] = [];
  const at = src.node ? nodes.get(src.node) : undefined;
  const there = dst.node && dst.node !== src.node ? nodes.get(dst.node) : undefined;
  const arrival = there ? { arrival: arrivalFastPath(src.ip, dst.ip, proto, there) } : {};
  if (!at) return { redirected: false, why: ["the source is not a pod of a node with the fast path"], ...arrival };
  if (!at.on) return { redirected: false, why: [`the fast path is off on ${at.node}`], ...arrival };
  if (proto === "icmp") why.push(ICMP_WHY);
  const local = at.pods.has(dst.ip) || at.plain.includes(dst.ip) || dst.node === at.node;
  // Across nodes, by the host-gw routes map alone (the address's pod need not be known here: the
  // program looks only at the map, and the other node decides for its pod).
  if (!local && !behind(at, dst.ip)) {
    why.push(dst.node ? `the destination's node (${dst.node}) is not behind a host-gw route of ${at.node} (VXLAN or not routed by the agent: the stack carries it)` : "the destination is not a pod's address (a Service, a node or outside: the stack translates and routes it)");
  }
  const s = podFastPath(at, src.ip);
  if (!s.plain) why.push(...s.why.map((w) => `source: ${w}`));
  if (local) {
    const d = podFastPath(at, dst.ip);
    if (!d.plain) why.push(...d.why.map((w) => `destination: ${w}`));
  }
  return { redirected: why.length === 0, why, ...arrival };
}

/** On the destination's node: from the underlay straight into the pod, or why its stack takes it. */
function arrivalFastPath(srcIp: string, dstIp: string, proto: ProbeProto, n: NodeFastPath): { node: string; redirected: boolean; why: string[] } {
  const why: string[] = [];
  if (!n.on) return { node: n.node, redirected: false, why: [`the fast path is off on ${n.node}`] };
  if (proto === "icmp") why.push(ICMP_WHY);
  if (!n.underlay) why.push(`no underlay program on ${n.node} (no host-gw route there)`);
  if (!behind(n, srcIp)) why.push(`the source ${srcIp} is not a pod behind a host-gw route of ${n.node}`);
  const d = podFastPath(n, dstIp);
  if (!d.plain) why.push(...d.why.map((w) => `destination: ${w}`));
  return { node: n.node, redirected: why.length === 0, why };
}
