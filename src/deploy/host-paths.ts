// The host directories the agent shares with the plugin processes the runtime starts on the
// host. Each is mounted at the same path inside the container, so every path the agent
// writes into the conflist (binaries, ipam.dataDir, logFile, agentSocket) is valid on both
// sides and a call gives the same result whether the agent or the plugin runs it.
import type { V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { ManifestOptions } from "./options.ts";

interface HostPath {
  name: string;
  path: string;
  /** HostToContainer: mounts the host makes later (pod namespaces) show up in the container. */
  propagation?: "HostToContainer";
  /** Only read by the tools run in the pod (`kubectl exec ... -- mncni inspect`). */
  readOnly?: true;
}

export const agentHostPaths = (o: ManifestOptions): HostPath[] => [
  { name: "cni-bin", path: o.cniBinDir }, // mncni, mncni-ipam, mncni-core installed here
  { name: "cni-conf", path: o.cniConfDir }, // 10-mncni.conflist
  { name: "run-mncni", path: "/run/mncni" }, // the CNI socket plugin processes connect to
  { name: "ipam-data", path: "/var/lib/cni/networks" }, // one IPAM store for served and plugin-run calls
  { name: "log", path: "/var/log/mncni" }, // the plugin's log file
  // Pod namespaces pinned by the runtime (containerd, CRI-O): served calls open CNI_NETNS here.
  { name: "netns", path: "/run/netns", propagation: "HostToContainer" },
  // The runtime's CNI result cache (libcni's cacheDir): which pod each attachment belongs to,
  // for `mncni inspect`/`status`/`ipam show` run in the agent's pod. Without it they see
  // reservations without a result: "(unknown pod)" and false leaks.
  { name: "cni-results", path: "/var/lib/cni/results", readOnly: true },
];

export function hostPathVolumes(paths: readonly HostPath[]): V1Volume[] {
  return paths.map((p) => ({ name: p.name, hostPath: { path: p.path, type: "DirectoryOrCreate" } }));
}

export function hostPathMounts(paths: readonly HostPath[]): V1VolumeMount[] {
  return paths.map((p) => ({
    name: p.name,
    mountPath: p.path,
    ...(p.propagation ? { mountPropagation: p.propagation } : {}),
    ...(p.readOnly ? { readOnly: true } : {}),
  }));
}
