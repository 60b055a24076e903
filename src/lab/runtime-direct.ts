// The direct runtime: the lab makes the pod's namespace and runs the node's CNI chain itself
// through the executor (a small libcni), with the CNI_ARGS kubelet's runtime would pass.
// Fast and needs no packages: the lab's default.
import { CniExecutor, type RuntimeAttachment } from "./executor.ts";
import { capabilityArgs } from "./pod-capabilities.ts";
import { SandboxLeftError, type PodRuntime } from "./pod-runtime.ts";
import { netnsExecArgv } from "./sh.ts";
import { saveState, type LabState, type NodeState, type PodState } from "./state.ts";
import { nodePaths } from "./topology.ts";
import { createPodNetns, deleteNetns } from "./underlay.ts";
import { k8sPodName } from "./write-manifests.ts";

function executorFor(s: LabState, node: NodeState): CniExecutor {
  const p = nodePaths(s.name, node.name);
  return new CniExecutor({ confDir: p.confDir, binDirs: [p.binDir], cacheDir: p.cacheDir, execPrefix: netnsExecArgv(node.ns, []) });
}

function attachment(pod: PodState): RuntimeAttachment {
  return {
    containerId: pod.containerId,
    netns: `/run/netns/${pod.ns}`,
    ifname: pod.ifname,
    args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: pod.namespace, K8S_POD_NAME: k8sPodName(pod), K8S_POD_INFRA_CONTAINER_ID: pod.containerId },
    capabilityArgs: capabilityArgs(pod),
  };
}

/** Waits between the rollback's DEL attempts: a plugin whose server just died answers again within a second or two. */
const ROLLBACK_DELAYS_MS = [200, 1000];

/** DEL of a pod whose ADD failed, tried again after a failure; the last error, or undefined once it succeeded. */
async function rollBack(exec: CniExecutor, pod: PodState): Promise<string | undefined> {
  let error = "";
  for (const delay of [0, ...ROLLBACK_DELAYS_MS]) {
    if (delay) await Bun.sleep(delay);
    try {
      await exec.del(attachment(pod));
      return undefined;
    } catch (e) {
      error = (e as Error).message;
    }
  }
  return error;
}

export const directRuntime: PodRuntime = {
  kind: "direct",

  async startNode() {},
  async stopNode() {},

  async restartNode(s, node) {
    throw new Error(`cannot restart the runtime of node "${node.name}": lab "${s.name}" runs pods with the direct runtime, which has no process (use \`lab up --runtime containerd\`)`);
  },

  async create(s, node, pod) {
    createPodNetns(s, pod.ns);
    const exec = executorFor(s, node);
    try {
      const result = await exec.add(attachment(pod));
      pod.addMs = Math.round(exec.calls.reduce((a, c) => a + c.ms, 0) * 10) / 10;
      pod.ips = (result.ips ?? []).map((ip) => ip.address.split("/")[0]!);
      if (pod.ips.length === 0) throw new Error(`cannot add pod "${pod.name}": the CNI result has no IP address`);
    } catch (e) {
      const delError = await rollBack(exec, pod);
      if (delError !== undefined) {
        throw new SandboxLeftError(
          new Error(`${(e as Error).message}; rolling back: DEL failed ${ROLLBACK_DELAYS_MS.length + 1} times (${delError}): the pod's address stays reserved, and the lab tries the DEL again before the next pod add or remove on node "${node.name}"`),
          delError,
        );
      }
      await this.release(s, node, pod);
      throw e;
    }
  },

  async teardown(s, node, pod) {
    await executorFor(s, node).del(attachment(pod));
  },

  async release(s, _node, pod) {
    deleteNetns(pod.ns);
    s.namespaces = s.namespaces.filter((n) => n !== pod.ns);
    saveState(s);
  },
};
