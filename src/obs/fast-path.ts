// Whether a pod, and a flow, take the eBPF fast path, and why not: what the plain-pods map of
// the node holds (the kernel's answer, read by the recorded map ID), with the agent's reasons
// for every pod not in it (src/agent/fast-path/plain.ts, the same function the agent runs)
// when the cluster state is given.
import type { ClusterState } from "../cluster/types.ts";
import type { NodeView } from "../cni/node-view.ts";
import { closeBpfFd, fdById, Netlink, PlainPodsMap, withNetns } from "../kernel/index.ts";
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
}

const inNs = <T>(netns: string | undefined, fn: () => T): T => (netns ? withNetns(netns, fn) : fn());

function plainAddresses(v: NodeView): string[] {
  const rec = readRecord(fastPathDir(v.dataDir, v.network));
  const prog = openRecordedProgram(rec);
  if (prog === undefined) return [];
  closeBpfFd(prog);
  const map = PlainPodsMap.adopt(fdById("map", rec!.map));
  try {
    return map.ips();
  } finally {
    map.close();
  }
}

/** The node's fast path as its kernel has it (and, with the cluster, why each other pod is not in it). */
export function nodeFastPath(v: NodeView, cluster?: ClusterState): NodeFastPath {
  const out: NodeFastPath = { node: v.name, on: v.fastPath === true, plain: [], pods: new Map() };
  try {
    out.plain = plainAddresses(v);
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

/**
 * A flow between two endpoints: redirected only between plain pods of one node, for TCP, UDP and
 * SCTP. `dst.node`: the node of the pod the packet is delivered to, when it is a pod's.
 */
export function flowFastPath(src: { ip: string; node?: string }, dst: { ip: string; node?: string }, proto: ProbeProto, nodes: ReadonlyMap<string, NodeFastPath>): FlowFastPath {
  const why: string[] = [];
  const at = src.node ? nodes.get(src.node) : undefined;
  if (!at) return { redirected: false, why: ["the source is not a pod of a node with the fast path"] };
  if (!at.on) return { redirected: false, why: [`the fast path is off on ${at.node}`] };
  if (proto === "icmp") why.push("ICMP takes the stack (errors and their quoting are the stack's)");
  const local = at.pods.has(dst.ip) || at.plain.includes(dst.ip) || dst.node === at.node;
  if (!local) why.push(dst.node ? `the destination is on another node (${dst.node}): only pods of one node are redirected` : "the destination is not a pod's address (a Service, a node or outside: the stack translates and routes it)");
  const s = podFastPath(at, src.ip);
  if (!s.plain) why.push(...s.why.map((w) => `source: ${w}`));
  if (local) {
    const d = podFastPath(at, dst.ip);
    if (!d.plain) why.push(...d.why.map((w) => `destination: ${w}`));
  }
  return { redirected: why.length === 0, why };
}
