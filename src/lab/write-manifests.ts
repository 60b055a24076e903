// The lab's side of the cluster state: it is the node IPAM and the scheduler, so it writes the
// Node and Pod objects the agents read from the shared manifests directory.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { POD_MTU_CONDITION } from "../cluster/types.ts";
import { bandwidthAnnotations } from "./pod-capabilities.ts";
import { nodeAddresses, type NodeState, type PodState } from "./state.ts";

/** Atomic write; the temporary name is a dotfile with another extension, which sources skip. */
export function writeManifest(dir: string, file: string, obj: unknown): void {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${file}.tmp`);
  writeFileSync(tmp, stringify(obj));
  renameSync(tmp, join(dir, file));
}

const nodeFile = (node: string) => `node-${node}.yaml`;
export const namespaceFile = (name: string) => `namespace-${name}.yaml`;
/** Policies the lab applied (`lab apply`): one file per object. */
export const policyFile = (kind: string, name: string, namespace?: string) => `policy-${kind.toLowerCase()}-${namespace ? `${namespace}.` : ""}${name}.yaml`;
/** EndpointSlices (the lab's endpoint-slice controller, or `lab apply`): one file per slice. */
export const endpointSliceFile = (namespace: string, name: string) => `endpointslice-${namespace}.${name}.yaml`;
const podFile = (pod: PodState) => `pod-${pod.namespace}-${pod.node}-${pod.name}.yaml`;

function nodeManifest(node: NodeState): object {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: node.name,
      labels: { "kubernetes.io/hostname": node.name, "mncni.dev/lab": "true" },
    },
    spec: { podCIDR: node.podCidrs[0], podCIDRs: node.podCidrs },
    status: {
      addresses: [
        ...nodeAddresses(node).map((address) => ({ type: "InternalIP", address })),
        { type: "Hostname", address: node.name },
      ],
      // Where the agent publishes its pod MTU on a Kubernetes Node (the lab does it for a dir: source).
      ...(node.podMTU !== undefined ? { conditions: [{ type: POD_MTU_CONDITION, status: "True", reason: "Published", message: String(node.podMTU) }] } : {}),
    },
  };
}

/**
 * The Pod's name in Kubernetes: `<node>-<name>` in the default namespace and for the podN the
 * lab names (`lab up`'s pods of every node never clash), the name given in another namespace
 * (`lab pod add node1 web --namespace z` is z/web).
 */
export const k8sPodName = (pod: PodState) => pod.k8sName ?? `${pod.node}-${pod.name}`;

/** Labels the lab sets on every Pod (`lab check` and the documented policies select on them): not the user's to change. */
export const LAB_POD_LABELS = ["app", "node"];

export function podLabels(pod: PodState): Record<string, string> {
  return { ...pod.labels, app: "echo", node: pod.node };
}

export function podManifest(pod: PodState, hostIPs: string[]): object {
  const annotations = bandwidthAnnotations(pod);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: k8sPodName(pod), namespace: pod.namespace, labels: podLabels(pod), ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec: {
      nodeName: pod.node,
      containers: [{ name: "echo", image: "mncni-lab/echo", ports: [{ containerPort: 7777 }, ...(pod.ports ?? []), ...(pod.hostPorts ?? [])] }],
    },
    // Before its ADD a pod has no address yet (Pending), as the API shows it.
    status: pod.ips.length
      ? { phase: "Running", hostIP: hostIPs[0], ...(hostIPs.length > 1 ? { hostIPs: hostIPs.map((ip) => ({ ip })) } : {}), podIP: pod.ips[0], podIPs: pod.ips.map((ip) => ({ ip })) }
      : { phase: "Pending" },
  };
}

export function writeNode(dir: string, node: NodeState): void {
  writeManifest(dir, nodeFile(node.name), nodeManifest(node));
}

export function removeNode(dir: string, node: string): void {
  rmSync(join(dir, nodeFile(node)), { force: true });
}

export function writePod(dir: string, pod: PodState, hostIPs: string[]): void {
  writeManifest(dir, podFile(pod), podManifest(pod, hostIPs));
}

export function removePod(dir: string, pod: PodState): void {
  rmSync(join(dir, podFile(pod)), { force: true });
}
