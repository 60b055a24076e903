// What a pod asks of the chain beyond an address: hostPort mappings and bandwidth, in the form
// each runtime hands them on. containerd turns the sandbox's port mappings and bandwidth
// annotations into the portMappings and bandwidth capability arguments; the direct runtime
// builds the same arguments itself, as containerd 1.6 does.
import type { PodState } from "./state.ts";

/** containerd's burst for an annotated rate (it takes none from the Pod). */
const BURST = 4294967295;

const SUFFIX: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A Kubernetes quantity (10M, 1.5Gi, 500k) in units; throws naming the field when it is not one. */
export function parseQuantity(field: string, q: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) throw new Error(`cannot use ${field} "${q}": not a quantity (e.g. 10M, 1Gi)`);
  const v = Math.round(Number(m[1]) * SUFFIX[m[2] ?? ""]!);
  if (v <= 0) throw new Error(`cannot use ${field} "${q}": must be above 0`);
  return v;
}

/** kubelet's bounds for a bandwidth annotation (outside them the Pod gets no sandbox). */
const MIN_RATE = 1e3;
const MAX_RATE = 1e15;

/** A bandwidth annotation in bit/s, refused as kubelet refuses it. */
export function parseBandwidth(field: string, q: string): number {
  const v = parseQuantity(field, q);
  if (v < MIN_RATE) throw new Error(`cannot use ${field} "${q}": unreasonably small (< 1kbit)`);
  if (v > MAX_RATE) throw new Error(`cannot use ${field} "${q}": unreasonably large (> 1Pbit)`);
  return v;
}

/** The Pod annotations kubelet copies onto the sandbox for the bandwidth plugin. */
export function bandwidthAnnotations(pod: PodState): Record<string, string> {
  return {
    ...(pod.bandwidth?.ingress ? { "kubernetes.io/ingress-bandwidth": pod.bandwidth.ingress } : {}),
    ...(pod.bandwidth?.egress ? { "kubernetes.io/egress-bandwidth": pod.bandwidth.egress } : {}),
  };
}

/** The capability arguments libcni gets from containerd for this pod (absent ones left out). */
export function capabilityArgs(pod: PodState): Record<string, unknown> {
  const bw = pod.bandwidth;
  const bandwidth = {
    ...(bw?.ingress ? { ingressRate: parseBandwidth("--ingress-bandwidth", bw.ingress), ingressBurst: BURST } : {}),
    ...(bw?.egress ? { egressRate: parseBandwidth("--egress-bandwidth", bw.egress), egressBurst: BURST } : {}),
  };
  return {
    ...(pod.hostPorts?.length ? { portMappings: pod.hostPorts.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol.toLowerCase() })) } : {}),
    ...(Object.keys(bandwidth).length ? { bandwidth } : {}),
  };
}
