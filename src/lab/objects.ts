// Where the lab writes the cluster's objects: through its API server (kubernetes source, the
// default: every write is an API call, as kubelet, the scheduler and kubectl make them), or into
// the manifests directory the agents read (dir source). Both sides of the seam take the same
// calls, so the lab's flows (lab.ts, pods.ts, k8s-objects.ts) are written once.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { isConflict, isNotFound, type KubeClient } from "../kube/index.ts";
import { NETWORK_UNAVAILABLE } from "../cluster/node-condition.ts";
import { apiVersionOf, KINDS, type Kind, type Obj } from "./apiserver/kinds.ts";
import { labClient, onKubernetes } from "./control-plane.ts";
import { nodeAddresses, type LabState, type NodeState, type PodState } from "./state.ts";
import { manifestsDir } from "./topology.ts";
import { serviceFile } from "./services.ts";
import { endpointSliceFile, k8sPodName, namespaceFile, podLabels, podManifest, policyFile, removeNode as removeNodeFile, removePod as removePodFile, writeManifest, writeNode, writePod } from "./write-manifests.ts";
import { LAB_AGENT_WAIT_MS } from "./waits.ts";

export const NS_NAME_LABEL = "kubernetes.io/metadata.name";
/** Holds a Pod deleted with a grace period until the lab's DEL (kubelet's part, which the lab's API server does not play). */
const GRACE_FINALIZER = "mncni.dev/lab-grace-period";

export type ApplyResult = "created" | "configured" | "unchanged";

/** What kubectl calls an object in its result lines: networkpolicy.networking.k8s.io/NAME. */
export function kubectlName(o: Obj): string {
  const k = kindOfObject(o);
  return `${k ? k.singular : String(o.kind).toLowerCase()}${k?.group ? `.${k.group}` : ""}/${o.metadata?.name}`;
}

export function kindOfObject(o: Obj): Kind | undefined {
  return KINDS.find((k) => k.kind === o.kind && apiVersionOf(k) === o.apiVersion);
}

export interface LabObjects {
  /** A node's Node: on the API created with its addresses (its pod CIDRs come from the controller); in the directory with the lab's. */
  putNode(node: NodeState): Promise<void>;
  /** The node's agent is ready: the Node's Ready condition, as kubelet sets it. */
  nodeReady(node: NodeState): Promise<void>;
  removeNode(node: string): Promise<void>;
  /** A Pod before its ADD (Pending, no address), and again after it (Running, its addresses). */
  putPod(pod: PodState, hostIPs: string[]): Promise<void>;
  /** The Pod's labels as stored (on the API: whatever kubectl changed too), the lab's own included. */
  podLabels(pod: PodState): Promise<Record<string, string>>;
  /** The Pod's labels changed (`lab label pod`). */
  relabelPod(pod: PodState, hostIPs: string[]): Promise<void>;
  removePod(pod: PodState): Promise<void>;
  /**
   * The Pod is being deleted with a grace period (`lab pod remove --grace`): on the API deleted
   * and held by a finalizer (deletionTimestamp set: the endpoint-slice controller makes its
   * endpoints terminating) until removePod; nothing in the directory (the lab writes its slices).
   */
  terminatePod(pod: PodState): Promise<void>;
  /** A Namespace's labels; undefined when there is no such Namespace. */
  namespaceLabels(name: string): Promise<Record<string, string> | undefined>;
  /** Creates the Namespace, or sets its labels (kubernetes.io/metadata.name is kept). */
  putNamespace(name: string, labels: Record<string, string>): Promise<void>;
  /** `lab apply`: creates or replaces one object. */
  apply(o: Obj): Promise<ApplyResult>;
  /** `lab delete`: false when there was no such object. */
  remove(o: Obj): Promise<boolean>;
}

const namespaceObject = (name: string, labels: Record<string, string>): Obj =>
  ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...labels, [NS_NAME_LABEL]: name } } });

/** The manifests directory: one file per object, written atomically. */
function dirObjects(s: LabState): LabObjects {
  const dir = manifestsDir(s.name);
  const nsOf = (o: Obj) => (o.metadata!.namespace ?? "default") as string;
  const fileOf = (o: Obj) =>
    o.kind === "Namespace" ? namespaceFile(o.metadata!.name)
    : o.kind === "Service" ? serviceFile(nsOf(o), o.metadata!.name)
    : o.kind === "EndpointSlice" ? endpointSliceFile(nsOf(o), o.metadata!.name)
    : policyFile(o.kind!, o.metadata!.name, kindOfObject(o)?.namespaced ? nsOf(o) : undefined);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return {
    putNode: async (node) => writeNode(dir, node),
    nodeReady: async () => {},
    removeNode: async (node) => removeNodeFile(dir, node),
    putPod: async (pod, hostIPs) => writePod(dir, pod, hostIPs),
    podLabels: async (pod) => podLabels(pod),
    relabelPod: async (pod, hostIPs) => writePod(dir, pod, hostIPs),
    removePod: async (pod) => removePodFile(dir, pod),
    terminatePod: async () => {},
    namespaceLabels: async (name) => {
      const path = join(dir, namespaceFile(name));
      if (!existsSync(path)) return undefined;
      return { ...(parseYaml(readFileSync(path, "utf8")) as Obj)?.metadata?.labels };
    },
    putNamespace: async (name, labels) => writeManifest(dir, namespaceFile(name), namespaceObject(name, labels)),
    apply: async (o) => {
      const path = join(dir, fileOf(o));
      const obj = o.kind === "Namespace" ? namespaceObject(o.metadata!.name, { ...o.metadata!.labels }) : o;
      const before = existsSync(path) ? parseYaml(readFileSync(path, "utf8")) : undefined;
      if (before !== undefined && same(before, obj)) return "unchanged";
      writeManifest(dir, fileOf(o), obj);
      return before === undefined ? "created" : "configured";
    },
    remove: async (o) => {
      const path = join(dir, fileOf(o));
      if (!existsSync(path)) return false;
      rmSync(path, { force: true });
      return true;
    },
  };
}

const NODES = KINDS.find((k) => k.plural === "nodes")!;
const PODS = KINDS.find((k) => k.plural === "pods")!;
const NAMESPACES = KINDS.find((k) => k.plural === "namespaces")!;

/** What `lab apply` compares to say "unchanged": everything but what the server keeps for itself. */
function userPart(o: Obj): unknown {
  const { metadata, status: _status, ...rest } = o;
  return { ...rest, metadata: { name: metadata?.name, namespace: metadata?.namespace, labels: metadata?.labels ?? {}, annotations: metadata?.annotations ?? {} } };
}

/**
 * The objects' write path through the API (one function per verb, reused by every lab command
 * that writes: pods, labels, `lab apply`/`delete`, Services).
 */
export async function applyThroughApi(c: KubeClient, o: Obj): Promise<ApplyResult> {
  const kind = kindOfObject(o);
  if (!kind) throw new Error(`cannot apply ${o.kind} "${o.metadata?.name}": the lab API server does not serve ${o.apiVersion} ${o.kind}`);
  const namespace = kind.namespaced ? (o.metadata?.namespace ?? "default") : undefined;
  const at = { namespace, name: o.metadata!.name as string };
  const want: Obj = { ...o, metadata: { ...o.metadata, ...(namespace ? { namespace } : {}) } };
  let cur: Obj | undefined;
  try {
    cur = await c.get(kind, at);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  // A status the lab gives (a LoadBalancer Service's address, as a cloud controller would) goes
  // through /status: the main resource does not write it.
  const status = kind.status && want.status !== undefined && JSON.stringify(want.status) !== JSON.stringify(cur?.status) ? want.status : undefined;
  const writeStatus = async () => {
    if (status !== undefined) await c.patch(kind, { ...at, subresource: "status" }, { status }, "merge");
  };
  if (!cur) {
    await c.create(kind, { namespace }, want as never);
    await writeStatus();
    return "created";
  }
  // The server keeps the Namespace's name label: compare with it in place.
  if (kind.kind === "Namespace") want.metadata!.labels = { ...want.metadata!.labels, [NS_NAME_LABEL]: at.name };
  const same = JSON.stringify(userPart(cur)) === JSON.stringify(userPart({ ...cur, ...want, metadata: { ...cur.metadata, ...want.metadata } }));
  // Replaced whole (the lab's apply replaces), at the version read: a change meanwhile is a 409.
  if (!same) await c.update(kind, at, { ...want, metadata: { ...want.metadata, resourceVersion: cur.metadata?.resourceVersion } } as never);
  await writeStatus();
  return same && status === undefined ? "unchanged" : "configured";
}

/** false when there was no such object. */
export async function deleteThroughApi(c: KubeClient, o: Obj): Promise<boolean> {
  const kind = kindOfObject(o);
  if (!kind) throw new Error(`cannot delete ${o.kind} "${o.metadata?.name}": the lab API server does not serve ${o.apiVersion} ${o.kind}`);
  try {
    await c.delete(kind, { namespace: kind.namespaced ? (o.metadata?.namespace ?? "default") : undefined, name: o.metadata!.name as string });
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

function apiObjects(s: LabState): LabObjects {
  const c = labClient(s);
  const nodeStatus = (node: NodeState) => ({
    addresses: [...nodeAddresses(node).map((address) => ({ type: "InternalIP", address })), { type: "Hostname", address: node.name }],
  });
  return {
    putNode: async (node) => {
      const metadata = { name: node.name, labels: { "kubernetes.io/hostname": node.name, "mncni.dev/lab": "true" } };
      try {
        await c.create(NODES, {}, { apiVersion: "v1", kind: "Node", metadata } as never);
      } catch (e) {
        if (!isConflict(e)) throw e; // a restarted node: its Node is still there
      }
      // As kubelet: the Node first, then its status (the main resource does not write status). A
      // merge patch: addresses' strategic merge key (type) would fold a dual-stack node's two InternalIPs into one.
      await c.patch(NODES, { name: node.name, subresource: "status" }, { status: nodeStatus(node) }, "merge");
    },
    nodeReady: async (node) => {
      // The agent's own word first: NetworkUnavailable=False on its Node once its routes and
      // conflist are in place (as on a cluster); then Ready, as kubelet reports it.
      const deadline = Date.now() + LAB_AGENT_WAIT_MS;
      const up = (n: Obj) => (n.status?.conditions ?? []).some((x: { type?: string; status?: string }) => x.type === NETWORK_UNAVAILABLE && x.status === "False");
      while (!up((await c.get(NODES, { name: node.name })) as Obj)) {
        if (Date.now() > deadline) throw new Error(`cannot get node "${node.name}" ready: its agent did not set ${NETWORK_UNAVAILABLE}=False on its Node in ${LAB_AGENT_WAIT_MS} ms (see its agent.log)`);
        await Bun.sleep(25);
      }
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const ready = { type: "Ready", status: "True", reason: "KubeletReady", message: "the node's mncni agent is ready", lastHeartbeatTime: now, lastTransitionTime: now };
      await c.patch(NODES, { name: node.name, subresource: "status" }, { status: { conditions: [ready] } }, "strategic");
    },
    removeNode: async (node) => {
      await c.delete(NODES, { name: node }).catch((e) => {
        if (!isNotFound(e)) throw e;
      });
    },
    putPod: async (pod, hostIPs) => {
      const m = podManifest(pod, hostIPs) as Obj;
      if (pod.ips.length === 0) {
        const created = (await c.create(PODS, { namespace: pod.namespace }, { ...m, status: undefined } as never)) as Obj;
        // The sandbox gets the Pod's UID, as kubelet gives it to the runtime (containerd's metadata).
        if (typeof created?.metadata?.uid === "string") pod.uid = created.metadata.uid;
        return;
      }
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const ready = { type: "Ready", status: "True", lastTransitionTime: now };
      // The echo container runs once the sandbox has its network (the lab's echo server).
      const echo = { name: "echo", image: "mncni-lab/echo", ready: true, started: true, restartCount: 0, state: { running: { startedAt: now } } };
      await c.patch(PODS, { namespace: pod.namespace, name: k8sPodName(pod), subresource: "status" }, { status: { ...m.status, startTime: now, conditions: [ready], containerStatuses: [echo] } }, "strategic");
    },
    podLabels: async (pod) => ({ ...((await c.get(PODS, { namespace: pod.namespace, name: k8sPodName(pod) })) as Obj).metadata?.labels }),
    relabelPod: async (pod) => {
      const labels = (podManifest(pod, []) as Obj).metadata!.labels as Record<string, string>;
      const cur = (await c.get(PODS, { namespace: pod.namespace, name: k8sPodName(pod) })) as Obj;
      // A merge patch: null removes the labels the pod no longer has.
      const patch = Object.fromEntries([...Object.keys(cur.metadata?.labels ?? {}).map((k) => [k, null]), ...Object.entries(labels)]);
      await c.patch(PODS, { namespace: pod.namespace, name: k8sPodName(pod) }, { metadata: { labels: patch } }, "merge");
    },
    removePod: async (pod) => {
      const at = { namespace: pod.namespace, name: k8sPodName(pod) };
      const gone = (e: unknown) => {
        if (!isNotFound(e)) throw e;
      };
      // A Pod terminating (terminatePod) goes when its finalizer does; any other is deleted now.
      const cur = (await c.get(PODS, at).catch(gone)) as Obj | undefined;
      if (cur?.metadata?.deletionTimestamp) await c.patch(PODS, at, { metadata: { finalizers: null } }, "merge").catch(gone);
      else if (cur) await c.delete(PODS, at).catch(gone);
    },
    terminatePod: async (pod) => {
      const at = { namespace: pod.namespace, name: k8sPodName(pod) };
      await c.patch(PODS, at, { metadata: { finalizers: [GRACE_FINALIZER] } }, "merge");
      await c.delete(PODS, at);
    },
    namespaceLabels: async (name) => {
      try {
        return { ...((await c.get(NAMESPACES, { name })) as Obj).metadata?.labels };
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    putNamespace: async (name, labels) => {
      await applyThroughApi(c, namespaceObject(name, labels));
    },
    apply: (o) => applyThroughApi(c, o),
    remove: (o) => deleteThroughApi(c, o),
  };
}

export function labObjects(s: LabState): LabObjects {
  return onKubernetes(s) ? apiObjects(s) : dirObjects(s);
}
