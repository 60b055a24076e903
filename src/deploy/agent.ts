// The agent DaemonSet (one per node), and the one-shot uninstall DaemonSet that runs the
// same image with the same host access and `mncni agent --uninstall`.
import type { V1Container, V1DaemonSet, V1DaemonSetUpdateStrategy, V1PodSpec, V1Probe } from "@kubernetes/client-node";
import type { Explained, Note } from "./explained.ts";
import { agentHostPaths, hostPathMounts, hostPathVolumes } from "./host-paths.ts";
import { meta, METRICS_PORT, NAMES, selectorLabels, type Component } from "./meta.ts";
import type { ManifestOptions } from "./options.ts";

/** Where the Containerfile puts the executable (the forwarder, mncni-forward, lies beside it). */
export const IMAGE_BINARY = "/usr/local/bin/mncni";
/** Already on every node as the runtime's sandbox image; only keeps the uninstall pod alive. */
const PAUSE_IMAGE = "registry.k8s.io/pause:3.10";

const METRICS_HOST = "127.0.0.1";

function agentArgs(o: ManifestOptions): string[] {
  return [
    "agent",
    "--source", "kubernetes",
    "--cluster-cidr", o.clusterCidr.join(","),
    "--mode", o.mode,
    "--routing", o.routing,
    "--cni-bin-dir", o.cniBinDir,
    "--cni-conf-dir", o.cniConfDir,
    "--metrics-addr", `${METRICS_HOST}:${METRICS_PORT.agent}`,
    ...(o.serviceProxy ? ["--service-proxy"] : []),
  ];
}

/** Linux nodes only: the agent and the controller are Linux executables (a Windows node would pull and fail). */
export const LINUX_NODES = { "kubernetes.io/os": "linux" };

/**
 * Readiness of a node's agent: a probe every 5 s, not ready after 3 failures in a row (15 s),
 * so one slow answer (a long resync, a busy node) does not flap the node's readiness.
 */
export const READINESS = { period: 5, failures: 3 } as const;

export function httpProbe(path: string, port: number, o: { period: number; failures: number }): V1Probe {
  // With hostNetwork the pod IP is the node's; the listener is on loopback, which the
  // kubelet (on the same host) reaches when the probe names it.
  return { httpGet: { host: METRICS_HOST, path, port }, periodSeconds: o.period, timeoutSeconds: 2, failureThreshold: o.failures };
}

/** The container that touches the node: privileged, the host paths, NODE_NAME. */
function nodeContainer(name: string, o: ManifestOptions, args: string[]): V1Container {
  return {
    name,
    image: o.image,
    imagePullPolicy: "IfNotPresent",
    command: [IMAGE_BINARY],
    args,
    env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "spec.nodeName" } } }],
    securityContext: { privileged: true },
    volumeMounts: hostPathMounts(agentHostPaths(o)),
  };
}

const PRIVILEGED_NOTE =
  "privileged, not capabilities: NET_ADMIN, NET_RAW, SYS_ADMIN (setns) and SYS_PTRACE would cover\n" +
  "netlink, nftables and entering pod namespaces, but runtimes mount /proc/sys read-only in\n" +
  "unprivileged containers (checked with runc: EROFS), and the agent writes net.ipv4.ip_forward\n" +
  "and, for the CNI calls it serves, per-interface sysctls inside pod namespaces.";

function nodePodSpec(o: ManifestOptions, component: Component, containers: V1Container[], initContainers?: V1Container[]): V1PodSpec {
  return {
    hostNetwork: true,
    serviceAccountName: NAMES[component],
    priorityClassName: "system-node-critical",
    nodeSelector: { ...LINUX_NODES },
    tolerations: [{ operator: "Exists" }],
    ...(initContainers ? { initContainers } : {}),
    containers,
    volumes: hostPathVolumes(agentHostPaths(o)),
  };
}

function daemonSet(component: Component, o: ManifestOptions, pod: V1PodSpec, updateStrategy?: V1DaemonSetUpdateStrategy): V1DaemonSet {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: meta(component, NAMES[component], o.namespace),
    spec: {
      selector: { matchLabels: selectorLabels(component) },
      ...(updateStrategy ? { updateStrategy } : {}),
      template: { metadata: { labels: selectorLabels(component) }, spec: pod },
    },
  };
}

export function agentDaemonSet(o: ManifestOptions): Explained<V1DaemonSet> {
  const container: V1Container = {
    ...nodeContainer("agent", o, agentArgs(o)),
    // hostPort as the API server would default it for a hostNetwork pod (kubectl diff stays clean).
    ports: [{ name: "metrics", containerPort: METRICS_PORT.agent, hostPort: METRICS_PORT.agent, protocol: "TCP" }],
    readinessProbe: httpProbe("/readyz", METRICS_PORT.agent, READINESS),
    livenessProbe: { ...httpProbe("/healthz", METRICS_PORT.agent, { period: 10, failures: 6 }), initialDelaySeconds: 10 },
    resources: { requests: { cpu: "50m", memory: "64Mi" } },
  };
  const object = daemonSet("agent", o, nodePodSpec(o, "agent", [container]), { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  const notes: Note[] = [
    {
      path: ["spec", "updateStrategy"],
      text:
        "One node at a time, old pod stopped before the new one starts (maxSurge 0: two agents would\n" +
        "contend for the CNI socket and the node's routes). The node keeps a working plugin meanwhile:\n" +
        "the binaries and the conflist stay on the host while the pod is replaced, and a plugin that\n" +
        "finds no agent on the socket runs the call itself.",
    },
    { path: ["spec", "template", "spec", "hostNetwork"], text: "The agent programs the node's own routes and nftables, and serves CNI calls from the host." },
    { path: ["spec", "template", "spec", "nodeSelector"], text: "Linux nodes only: the agent is a Linux executable and programs Linux netlink and nftables." },
    { path: ["spec", "template", "spec", "tolerations"], text: "Every node needs the plugin, whatever its taints (NotReady nodes included: they wait for us)." },
    { path: ["spec", "template", "spec", "containers", 0, "securityContext"], text: PRIVILEGED_NOTE },
    {
      path: ["spec", "template", "spec", "containers", 0, "readinessProbe"],
      text: "Ready once the initial list is synced, routes are applied and the conflist is written.\nThree failures in a row (15 s), not one: a single slow answer must not flap the node.",
    },
  ];
  return { object, notes };
}

/**
 * Runs `mncni agent --uninstall` once per node as an init container; the pause container then
 * keeps the pod Running, so "every pod Running" means "every node cleaned" (a DaemonSet cannot
 * run a pod to completion). Needs no API access.
 */
export function uninstallDaemonSet(o: ManifestOptions): Explained<V1DaemonSet> {
  const pod = nodePodSpec(o, "uninstall", [{ name: "done", image: PAUSE_IMAGE, imagePullPolicy: "IfNotPresent" }], [nodeContainer("uninstall", o, ["agent", "--uninstall", "--cni-bin-dir", o.cniBinDir, "--cni-conf-dir", o.cniConfDir])]);
  delete pod.serviceAccountName;
  pod.automountServiceAccountToken = false;
  const object = daemonSet("uninstall", o, pod);
  return {
    object,
    notes: [
      { path: ["spec", "template", "spec", "initContainers"], text: "Removes routes, nftables tables, bridge, conflist and binaries; keeps IPAM state." },
      { path: ["spec", "template", "spec", "initContainers", 0, "securityContext"], text: PRIVILEGED_NOTE },
    ],
  };
}
