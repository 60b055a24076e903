// The lab's pods: a Pod manifest with the addresses its sandbox got, and an echo server for
// `lab check`. The sandbox (namespace, CNI chain) is the lab's pod runtime's (pod-runtime.ts).
import { join } from "node:path";
import { LAB_POD_LABELS, k8sPodName } from "./write-manifests.ts";
import { labObjects } from "./objects.ts";
import { netnsExecArgv, spawnDetached, stopProcess } from "./sh.ts";
import { labPodRef, nodeAddresses, podOnNode, saveState, type LabState, type NodeState, type PodState } from "./state.ts";
import { ECHO_PORT, labDir, nameProblem, ns } from "./topology.ts";
import { capabilityArgs } from "./pod-capabilities.ts";
import { SandboxLeftError } from "./pod-runtime.ts";
import { runtimeFor } from "./runtimes.ts";
import { ensureNamespace, findPodByRef } from "./k8s-objects.ts";
import { startPolicyServer, stopPolicyServer } from "./policy-ports.ts";
import { removeResolvConf, writePodResolvConf } from "./dns/lab-dns.ts";

/** What `lab pod add` may say about a pod beyond its node and name. */
export interface PodSpecOptions {
  /** Kubernetes namespace (default: default); created on first use. */
  namespace?: string;
  labels?: Record<string, string>;
  ports?: PodState["ports"];
  hostPorts?: PodState["hostPorts"];
  bandwidth?: PodState["bandwidth"];
}

const POD_IFNAME = "eth0";

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

export async function addPod(s: LabState, node: NodeState, given?: string, spec: PodSpecOptions = {}): Promise<PodState> {
  const name = given ?? nextPodName(node);
  const why = nameProblem(name);
  if (why) throw new Error(`cannot add pod "${name}": name ${why}`);
  const namespace = spec.namespace ?? "default";
  if (node.pods.some((p) => p.name === name && p.namespace === namespace)) throw new Error(`cannot add pod "${name}": node "${node.name}" already has it in namespace ${namespace}`);
  // The Pod's name: as given in another namespace than the default (`--namespace z` web: z/web);
  // <node>-<name> in the default namespace and for the podN the lab names, unique across nodes.
  const k8sName = namespace !== "default" && given !== undefined ? name : undefined;
  const clash = s.nodes.flatMap((n) => n.pods).find((p) => p.namespace === namespace && k8sPodName(p) === (k8sName ?? `${node.name}-${name}`));
  if (clash) throw new Error(`cannot add pod "${name}" in namespace ${namespace}: the Pod ${namespace}/${k8sPodName(clash)} exists (lab pod ${labPodRef(s.nodes.find((n) => n.name === clash.node)!, clash)})`);
  // Refused rather than overwritten: `lab check` and the documented policies select on these,
  // and `lab label pod` refuses to change them the same way.
  const own = Object.keys(spec.labels ?? {}).filter((k) => LAB_POD_LABELS.includes(k));
  if (own.length) throw new Error(`cannot use --labels key "${own[0]}": the lab sets it on every pod (app=echo, node=<node>); use another key`);
  // A second pod of that name on the node (another namespace): its namespace and container ID say which.
  const id = node.pods.some((p) => p.name === name) ? `${node.name}-${namespace}-${name}` : `${node.name}-${name}`;
  const pod: PodState = {
    name,
    ...(k8sName ? { k8sName } : {}),
    node: node.name,
    ns: `${s.name}-${id}`,
    namespace,
    ...(spec.labels && Object.keys(spec.labels).length ? { labels: spec.labels } : {}),
    ...(spec.ports?.length ? { ports: spec.ports } : {}),
    ...(spec.hostPorts?.length ? { hostPorts: spec.hostPorts } : {}),
    ...(spec.bandwidth?.ingress || spec.bandwidth?.egress ? { bandwidth: spec.bandwidth } : {}),
    containerId: `${s.name}-${id}`,
    ifname: POD_IFNAME,
    ips: [],
  };
  capabilityArgs(pod); // refuses a bandwidth that is no quantity before anything exists
  await retryPendingDels(s, node);
  const pending = node.pendingDel?.find((p) => p.name === name && p.namespace === namespace);
  if (pending) throw new Error(`cannot add pod "${name}": its earlier ADD is not rolled back yet (DEL fails: ${pending.delError})`);
  // The Namespace exists before the Pod, as in Kubernetes (its labels select the pod's namespace).
  if (pod.namespace !== "default") await ensureNamespace(s, pod.namespace);
  const objects = labObjects(s);
  // The Pod exists (labels, no address yet) before its ADD, as in Kubernetes: with policies in
  // force the agent needs its labels to program it and release its hold.
  await objects.putPod(pod, nodeAddresses(node));
  node.pods.push(pod);
  try {
    // The sandbox, wired by CNI ADD with the K8S_POD_* arguments naming the Pod object (as kubelet).
    await runtimeFor(s).create(s, node, pod);
  } catch (e) {
    node.pods = node.pods.filter((p) => p !== pod);
    await objects.removePod(pod).catch(() => {});
    // Never dropped with its address reserved: kept (with its sandbox) until a DEL works.
    if (e instanceof SandboxLeftError) (node.pendingDel ??= []).push({ ...pod, delError: e.delError });
    saveState(s);
    throw e;
  }
  // Then its status: Running, with the addresses the sandbox got (status.podIPs).
  await objects.putPod(pod, nodeAddresses(node));
  // As kubelet does for dnsPolicy ClusterFirst: the pod resolves through the cluster DNS.
  writePodResolvConf(s, pod);
  if (s.options.policyPorts) pod.serverPid = startPolicyServer(s, pod);
  saveState(s);
  return pod;
}

/** DEL again of the node's pods whose rollback failed; those that succeed are gone (sandbox included). */
async function retryPendingDels(s: LabState, node: NodeState): Promise<void> {
  if (!node.pendingDel?.length) return;
  const rt = runtimeFor(s);
  for (const pod of [...node.pendingDel]) {
    try {
      await rt.teardown(s, node, pod);
    } catch (e) {
      pod.delError = (e as Error).message;
      continue;
    }
    await rt.release(s, node, pod);
    node.pendingDel = node.pendingDel.filter((p) => p !== pod);
  }
  if (!node.pendingDel.length) delete node.pendingDel;
  saveState(s);
}

/**
 * A pod of the node by the lab's name (pod2; z/web for the web of namespace z), its Kubernetes
 * name (node1-pod2) or <namespace>/<name> as `lab label pod` takes it (the Kubernetes name, or
 * the lab's when that is unique).
 */
export function findNodePod(s: LabState, node: NodeState, ref: string): PodState {
  const pod = podOnNode(node, ref) ?? (ref.includes("/") ? findPodByRef(s, ref) : onlyOne(ref, node.pods.filter((p) => k8sPodName(p) === ref)));
  if (!pod || pod.node !== node.name) {
    throw new Error(`cannot find pod "${ref}" on node "${node.name}" (pods: ${node.pods.map((p) => `${labPodRef(node, p).slice(node.name.length + 1)} = ${p.namespace}/${k8sPodName(p)}`).join(", ") || "none"})`);
  }
  return pod;
}

function onlyOne(ref: string, found: PodState[]): PodState | undefined {
  if (found.length > 1) throw new Error(`cannot find pod "${ref}": ambiguous (${found.map((p) => `${p.namespace}/${k8sPodName(p)}`).join(", ")}); use <namespace>/<name>`);
  return found[0];
}

/**
 * DEL through the plugins (so IPAM releases the address), then the namespace and manifest.
 * The node's echo server is restarted first so that nothing holds the namespace open.
 */
export async function removePod(s: LabState, node: NodeState, pod: PodState, opts: { refreshEcho?: boolean } = {}): Promise<void> {
  await retryPendingDels(s, node);
  node.pods = node.pods.filter((p) => p !== pod);
  await stopPolicyServer(s, pod);
  if (opts.refreshEcho ?? true) await refreshNodeEcho(s, node);
  const rt = runtimeFor(s);
  let delError: Error | undefined;
  await rt.teardown(s, node, pod).catch((e: Error) => (delError = e));
  await rt.release(s, node, pod).catch((e: Error) => (delError ??= e));
  removeResolvConf(s.name, pod.ns);
  await labObjects(s).removePod(pod);
  node.pods = node.pods.filter((p) => p !== pod);
  saveState(s);
  if (delError) throw delError;
}
