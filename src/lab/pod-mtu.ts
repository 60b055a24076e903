// The published pod MTU in the lab. On Kubernetes each agent patches its own Node's status with
// the pod MTU it wrote into its conflist (condition MncniPodMTU) and compares the peers'; a `dir:` source is
// read-only to the agents, and the lab stands in for the API server, so the lab copies each
// agent's own number — the `mtu` of the conflist the agent wrote, the value it would publish —
// into that node's Node manifest whenever the lab does something that can change it (a node
// starts, an agent restarts, `lab node mtu`). The agents then read and compare it as they would
// on a cluster.
import { readFileSync } from "node:fs";
import { firstConfFile } from "./executor.ts";
import { ipBatch, ipJson, waitFor } from "./sh.ts";
import type { LabState, NodeState } from "./state.ts";
import { manifestsDir, nodePaths, ns } from "./topology.ts";
import { writeNode } from "./write-manifests.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";


/** The pod MTU of the conflist the node's agent wrote; undefined without one (or without an mtu). */
function conflistPodMTU(s: LabState, node: NodeState): number | undefined {
  const file = firstConfFile(nodePaths(s.name, node.name).confDir);
  if (!file) return undefined;
  try {
    const mtu = (JSON.parse(readFileSync(file, "utf8")) as { plugins?: { mtu?: unknown }[] }).plugins?.[0]?.mtu;
    return typeof mtu === "number" ? mtu : undefined;
  } catch {
    // Being rewritten by the agent (it writes atomically, so rarely): read again on the next publish.
    return undefined;
  }
}

/** Publishes the node's pod MTU on its Node manifest when it changed; returns it. */
export function publishPodMTU(s: LabState, node: NodeState): number | undefined {
  const mtu = conflistPodMTU(s, node);
  if (mtu !== undefined && mtu !== node.podMTU) {
    node.podMTU = mtu;
    // On the kubernetes source the agent patches its own Node: nothing for the lab to copy.
    if (s.options.source !== "kubernetes") writeNode(manifestsDir(s.name), node);
  }
  return mtu;
}

const underlayMTU = (node: NodeState) => ipJson<{ mtu: number }[]>(node.ns, ["link", "show", "eth0"])[0]!.mtu;

/**
 * `lab node mtu`: the node's underlay link (its eth0 and its switch port) gets another MTU, as
 * a node with jumbo frames or a smaller tunnel would have; the agent computes its pod MTU anew
 * (the same difference: the encapsulation is constant), and the lab publishes it.
 */
export async function setUnderlayMTU(s: LabState, node: NodeState, mtu: number): Promise<number> {
  if (s.options.wiring !== "agent") throw new Error(`cannot set the underlay MTU of node "${node.name}": lab "${s.name}" uses ${s.options.wiring} wiring (no agent computes a pod MTU)`);
  if (!Number.isInteger(mtu) || mtu < 1280 || mtu > 9000) throw new Error(`cannot set the underlay MTU of node "${node.name}" to "${mtu}": must be 1280..9000`);
  const before = underlayMTU(node);
  const podBefore = await waitFor(`the agent of node "${node.name}" to write its conflist`, () => conflistPodMTU(s, node), LAB_AGENT_WAIT_MS);
  const want = podBefore + (mtu - before);
  ipBatch(ns.switch(s.name, node.segment ?? 0), [`link set ${node.name} mtu ${mtu}`]);
  ipBatch(node.ns, [`link set eth0 mtu ${mtu}`]);
  await waitFor(`the agent of node "${node.name}" to write pod MTU ${want}`, () => conflistPodMTU(s, node) === want, LAB_AGENT_WAIT_MS);
  publishPodMTU(s, node);
  return want;
}
