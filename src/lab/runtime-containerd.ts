// The containerd runtime (`lab up --runtime containerd`): every node runs its own containerd
// (src/lab/cri/containerd.ts) with the node's CNI config and bin directories, and the lab
// drives it over CRI as kubelet does: RunPodSandbox with the pod's name, namespace, UID,
// labels, port mappings, DNS config and bandwidth annotations; StopPodSandbox (CNI DEL) and
// RemovePodSandbox on remove. containerd, not the lab, execs the plugin from the agent's
// conflist. The pod's namespace is the sandbox's (containerd names it cni-<uuid> under /run/netns).
import { existsSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { CriClient, PodSandboxConfig } from "./cri/client.ts";
import { buildPauseImage, importImage, missingTools, CONTAINERD_TOOLS, startContainerd, stopContainerd, stopContainerdProcess } from "./cri/containerd.ts";
import { podDnsConfig, removeResolvConf } from "./dns/lab-dns.ts";
import { bandwidthAnnotations } from "./pod-capabilities.ts";
import type { PodRuntime } from "./pod-runtime.ts";
import { saveState, type LabState, type NodeState, type PodState } from "./state.ts";
import { nodePaths, pauseImageDir } from "./topology.ts";
import { deleteNetns } from "./underlay.ts";
import { k8sPodName, podLabels } from "./write-manifests.ts";

/** containerd's CRI runs the reference loopback for the sandbox's lo before the node's network. */
const LOOPBACK = "/usr/lib/cni/loopback";
/** The sandbox label that names the lab, so `lab down` finds every sandbox of it. */
const LAB_LABEL = "mncni.dev/lab";

/** How long `down` waits for a containerd to list its sandboxes (one that hangs is ended anyway). */
const LIST_TIMEOUT_MS = 10_000;
/** Where containerd's libcni caches each attachment's result (1.6 has no setting for it); a DEL removes its entry. */
const LIBCNI_RESULTS = "/var/lib/cni/results";

/** The cached results of a sandbox whose DEL never ran (its containerd was gone): `<network>-<id>-<ifname>`. */
function removeCachedResults(sandboxId: string): void {
  let names: string[];
  try {
    names = readdirSync(LIBCNI_RESULTS);
  } catch {
    return;
  }
  for (const n of names) if (n.includes(`-${sandboxId}-`)) rmSync(join(LIBCNI_RESULTS, n), { force: true });
}

const socketOf = (s: LabState, node: NodeState) => join(nodePaths(s.name, node.name).containerdDir, "containerd.sock");

/** The CRI client of the node's containerd (loaded on use: a direct lab never loads gRPC). */
async function criOf(s: LabState, node: NodeState): Promise<CriClient> {
  const { CriClient } = await import("./cri/client.ts");
  return new CriClient(socketOf(s, node));
}

async function withCri<T>(s: LabState, node: NodeState, fn: (c: CriClient) => Promise<T>): Promise<T> {
  const c = await criOf(s, node);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** The pause image's archive, built on first use for every node of the lab. */
function pauseImage(s: LabState): string {
  const tar = join(pauseImageDir(s.name), "pause.tar");
  if (!existsSync(tar)) buildPauseImage(pauseImageDir(s.name));
  return tar;
}

/** What must be installed for `--runtime containerd`, checked before a lab is built. */
export function containerdProblem(): string | null {
  const missing = missingTools();
  if (!existsSync(LOOPBACK)) missing.push("loopback");
  if (!missing.length) return null;
  const pkgs = [...new Set(missing.map((t) => CONTAINERD_TOOLS[t] ?? "containernetworking-plugins"))];
  return `missing ${missing.join(", ")} (install: apt-get install ${pkgs.join(" ")})`;
}

function sandboxConfig(s: LabState, node: NodeState, pod: PodState): PodSandboxConfig {
  const name = k8sPodName(pod);
  return {
    metadata: { name, namespace: pod.namespace, uid: pod.uid!, attempt: 0 },
    hostname: name,
    log_directory: join(nodePaths(s.name, node.name).containerdDir, "pods", `${pod.namespace}_${name}_${pod.uid}`),
    dns_config: podDnsConfig(s, pod.namespace),
    port_mappings: (pod.hostPorts ?? []).map((p) => ({ protocol: p.protocol, container_port: p.containerPort, host_port: p.hostPort })),
    // kubelet's own labels beside the Pod's, and the lab's.
    labels: {
      ...podLabels(pod),
      "io.kubernetes.pod.name": name,
      "io.kubernetes.pod.namespace": pod.namespace,
      "io.kubernetes.pod.uid": pod.uid!,
      [LAB_LABEL]: s.name,
    },
    annotations: bandwidthAnnotations(pod),
  };
}

/** Stops and removes sandboxes (kubelet's order); the errors, one line each. */
async function removeSandboxes(c: CriClient, ids: string[]): Promise<string[]> {
  const errors: string[] = [];
  for (const id of ids) {
    try {
      await c.stopPodSandbox(id);
      await c.removePodSandbox(id);
    } catch (e) {
      errors.push(`${id.slice(0, 12)}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** The sandbox's namespace (containerd's cni-<uuid>, from its status) and addresses, into the pod. */
async function fillNetwork(c: CriClient, pod: PodState, id: string): Promise<void> {
  const { status, netns } = await c.podSandboxStatus(id);
  if (!netns || dirname(netns).replace(/^\/var\/run\//, "/run/") !== "/run/netns") throw new Error(`containerd's sandbox has no network namespace under /run/netns (${netns ?? "none"})`);
  pod.ns = basename(netns);
  pod.ips = [status.network?.ip, ...(status.network?.additional_ips ?? []).map((x) => x.ip)].filter((ip): ip is string => !!ip);
  if (pod.ips.length === 0) throw new Error("the sandbox has no IP address");
}

export const containerdRuntime: PodRuntime = {
  kind: "containerd",

  async startNode(s, node) {
    const p = nodePaths(s.name, node.name);
    const lo = join(p.binDir, "loopback");
    if (!existsSync(lo)) symlinkSync(LOOPBACK, lo);
    const image = pauseImage(s);
    node.containerdPid = await startContainerd({ dir: p.containerdDir, netns: node.ns, cniBinDir: p.binDir, cniConfDir: p.confDir });
    saveState(s);
    importImage(p.containerdDir, image);
  },

  async stopNode(s, node) {
    const dir = nodePaths(s.name, node.name).containerdDir;
    // Every sandbox of the lab on this node, the ones a failed add left too: their DEL runs
    // while the agent still serves.
    await withCri(s, node, async (c) => {
      const ids = (await c.listPodSandbox({ [LAB_LABEL]: s.name }, LIST_TIMEOUT_MS)).map((x) => x.id);
      await removeSandboxes(c, ids);
    }).catch(() => undefined);
    await stopContainerd(node.containerdPid, dir);
    for (const pod of node.pods) {
      if (!pod.sandboxId) continue;
      deleteNetns(pod.ns);
      // Not named <lab>-…: `down` would not find it.
      removeResolvConf(s.name, pod.ns);
      removeCachedResults(pod.sandboxId);
    }
    node.containerdPid = undefined;
    rmSync(dir, { recursive: true, force: true });
    saveState(s);
  },

  async restartNode(s, node) {
    const p = nodePaths(s.name, node.name);
    await stopContainerdProcess(node.containerdPid, p.containerdDir);
    node.containerdPid = await startContainerd({ dir: p.containerdDir, netns: node.ns, cniBinDir: p.binDir, cniConfDir: p.confDir });
    saveState(s);
    return node.containerdPid;
  },

  async create(s, node, pod) {
    pod.uid ??= crypto.randomUUID();
    const cfg = sandboxConfig(s, node, pod);
    await withCri(s, node, async (c) => {
      const started = performance.now();
      let id: string;
      try {
        id = await c.runPodSandbox(cfg);
      } catch (e) {
        // containerd tears a failed sandbox down itself; one it kept half-made goes too.
        const left = (await c.listPodSandbox({ "io.kubernetes.pod.uid": pod.uid! }).catch(() => [])).map((x) => x.id);
        const errors = await removeSandboxes(c, left);
        throw new Error(`cannot add pod "${pod.name}": RunPodSandbox: ${(e as Error).message}${errors.length ? `; removing what it left: ${errors.join("; ")}` : ""}`);
      }
      pod.addMs = Math.round((performance.now() - started) * 10) / 10;
      pod.sandboxId = id;
      pod.containerId = id;
      try {
        await fillNetwork(c, pod, id);
      } catch (e) {
        // A sandbox the lab cannot use is not left running with its address.
        const errors = await removeSandboxes(c, [id]);
        throw new Error(`cannot add pod "${pod.name}": ${(e as Error).message}${errors.length ? `; removing the sandbox: ${errors.join("; ")}` : ""}`);
      }
    });
  },

  async teardown(s, node, pod) {
    if (!pod.sandboxId) return;
    await withCri(s, node, (c) => c.stopPodSandbox(pod.sandboxId!));
  },

  async release(s, node, pod) {
    if (!pod.sandboxId) return;
    await withCri(s, node, (c) => c.removePodSandbox(pod.sandboxId!)).catch((e: Error) => {
      throw new Error(`cannot remove sandbox of pod "${pod.name}": ${e.message}`);
    });
    deleteNetns(pod.ns);
  },
};
