// Pods the way a container runtime makes them: a namespace, the node's CNI chain run by the
// executor, a Pod manifest with the addresses it got, and an echo server for `lab check`.
import { join } from "node:path";
import { CniExecutor } from "./executor.ts";
import { removePod as removePodManifest, writePod } from "./write-manifests.ts";
import { netnsExecArgv, spawnDetached, stopProcess } from "./sh.ts";
import { nodeAddresses, saveState, type LabState, type NodeState, type PodState } from "./state.ts";
import { ECHO_PORT, labDir, manifestsDir, nameProblem, nodePaths, ns } from "./topology.ts";
import { createPodNetns, deleteNetns } from "./underlay.ts";
import { ensureNamespace } from "./k8s-objects.ts";
import { startPolicyServer, stopPolicyServer } from "./policy-ports.ts";

/** What `lab pod add` may say about a pod beyond its node and name. */
export interface PodSpecOptions {
  /** Kubernetes namespace (default: default); created on first use. */
  namespace?: string;
  labels?: Record<string, string>;
  ports?: PodState["ports"];
}

const POD_IFNAME = "eth0";

function executorFor(s: LabState, node: NodeState): CniExecutor {
  const p = nodePaths(s.name, node.name);
  return new CniExecutor({ confDir: p.confDir, binDirs: [p.binDir], cacheDir: p.cacheDir, execPrefix: netnsExecArgv(node.ns, []) });
}

function attachment(pod: PodState) {
  return {
    containerId: pod.containerId,
    netns: `/run/netns/${pod.ns}`,
    ifname: pod.ifname,
    args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: pod.namespace, K8S_POD_NAME: `${pod.node}-${pod.name}`, K8S_POD_INFRA_CONTAINER_ID: pod.containerId },
  };
}

export const echoMarker = (lab: string) => `_echo --lab ${lab} `;

/**
 * One echo server process per node (and one for the external host) listens inside each of
 * the given namespaces: a process per pod would cost ~40 MB each.
 */
export function startEcho(s: LabState, inside: string, netnsList: string[]): number | undefined {
  if (netnsList.length === 0) return undefined;
  const argv = [
    ...s.options.selfCmd, "lab", "_echo", "--lab", s.name, "--port", String(ECHO_PORT),
    ...(s.options.clusterCidr6 ? ["--ipv6"] : []),
    ...netnsList.flatMap((n) => ["--netns", n]),
  ];
  return spawnDetached(netnsExecArgv(inside, argv), join(labDir(s.name), "echo.log"));
}

export async function stopEcho(s: LabState, pid: number | undefined): Promise<void> {
  if (pid) await stopProcess(pid, echoMarker(s.name));
}

/** Restarts the node's echo server for its current pods (it must not hold a removed pod's namespace). */
export async function refreshNodeEcho(s: LabState, node: NodeState): Promise<void> {
  await stopEcho(s, node.echoPid);
  node.echoPid = startEcho(s, node.ns, node.pods.filter((p) => p.ips.length > 0).map((p) => p.ns));
  saveState(s);
}

function nextPodName(node: NodeState): string {
  for (let j = 1; ; j++) if (!node.pods.some((p) => p.name === `pod${j}`)) return `pod${j}`;
}

export async function addPod(s: LabState, node: NodeState, name = nextPodName(node), spec: PodSpecOptions = {}): Promise<PodState> {
  const why = nameProblem(name);
  if (why) throw new Error(`cannot add pod "${name}": name ${why}`);
  if (node.pods.some((p) => p.name === name)) throw new Error(`cannot add pod "${name}": node "${node.name}" already has it`);
  const pod: PodState = {
    name,
    node: node.name,
    ns: ns.pod(s.name, node.name, name),
    namespace: spec.namespace ?? "default",
    ...(spec.labels && Object.keys(spec.labels).length ? { labels: spec.labels } : {}),
    ...(spec.ports?.length ? { ports: spec.ports } : {}),
    containerId: `${s.name}-${node.name}-${name}`,
    ifname: POD_IFNAME,
    ips: [],
  };
  // The Namespace exists before the Pod, as in Kubernetes (its labels select the pod's namespace).
  if (pod.namespace !== "default") ensureNamespace(s, pod.namespace);
  node.pods.push(pod);
  createPodNetns(s, pod.ns);
  const exec = executorFor(s, node);
  try {
    const result = await exec.add(attachment(pod));
    pod.addMs = Math.round(exec.calls.reduce((a, c) => a + c.ms, 0) * 10) / 10;
    pod.ips = (result.ips ?? []).map((ip) => ip.address.split("/")[0]!);
    if (pod.ips.length === 0) throw new Error(`cannot add pod "${name}": the CNI result has no IP address`);
    writePod(manifestsDir(s.name), pod, nodeAddresses(node));
    if (s.options.policyPorts) pod.serverPid = startPolicyServer(s, pod);
    saveState(s);
    return pod;
  } catch (e) {
    await exec.del(attachment(pod)).catch(() => {});
    deleteNetns(pod.ns);
    node.pods = node.pods.filter((p) => p !== pod);
    saveState(s);
    throw e;
  }
}

/**
 * DEL through the plugins (so IPAM releases the address), then the namespace and manifest.
 * The node's echo server is restarted first so that nothing holds the namespace open.
 */
export async function removePod(s: LabState, node: NodeState, pod: PodState, opts: { refreshEcho?: boolean } = {}): Promise<void> {
  node.pods = node.pods.filter((p) => p !== pod);
  await stopPolicyServer(s, pod);
  if (opts.refreshEcho ?? true) await refreshNodeEcho(s, node);
  let delError: Error | undefined;
  await executorFor(s, node).del(attachment(pod)).catch((e: Error) => (delError = e));
  deleteNetns(pod.ns);
  removePodManifest(manifestsDir(s.name), pod);
  node.pods = node.pods.filter((p) => p !== pod);
  s.namespaces = s.namespaces.filter((n) => n !== pod.ns);
  saveState(s);
  if (delError) throw delError;
}
