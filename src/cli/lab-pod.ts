// `mncni lab pod add | remove`: a running lab's pods, through CNI ADD and DEL, under its
// lock (the work: src/lab/pods.ts).
import { say } from "./output.ts";
import { parseLabelArgs } from "../lab/k8s-objects.ts";
import { labNode } from "../lab/places.ts";
import { addPod, findNodePod, refreshNodeEcho, removePod } from "../lab/pods.ts";
import { labPodRef, requireState, type PodState } from "../lab/state.ts";
import { k8sPodName } from "../lab/write-manifests.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
import { labObjects } from "../lab/objects.ts";
import type { Protocol } from "../cluster/index.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, locked, parse } from "./lab-common.ts";
import type { Group } from "./subcommands.ts";

const POD_ADD = {
  name: "mncni lab pod add",
  args: "<node> [<name>]",
  summary: "Adds a pod on a node through CNI ADD (default name: the node's first free podN). The Pod is named <node>-<name> in the default namespace (node1-pod2, unique across nodes) and for the podN the lab names; with --namespace z and a name, z/<name>. Lab commands name it node1/<name>, or node1/z/<name> (always accepted; shown so when another pod of the node has that name: one name may be used once per namespace on a node).",
  flags: {
    name: NAME,
    namespace: { type: "string", value: "NS", default: "default", help: "the pod's Kubernetes namespace (created on first use, labelled kubernetes.io/metadata.name)" },
    labels: { type: "string", value: "k=v,...", help: "labels of the Pod (beside the lab's app and node)" },
    ports: { type: "string", value: "NAME=PORT/PROTO,...", help: "named container ports of the Pod (PROTO: TCP, UDP or SCTP; default TCP), for named ports in policies" },
    "host-port": { type: "string", value: "HOST:PORT/PROTO,...", help: "hostPort mappings to the pod's PORT (the echo server listens on 7777), given to the chain as portMappings" },
    "ingress-bandwidth": { type: "string", value: "QUANTITY", help: "the Pod's kubernetes.io/ingress-bandwidth annotation in bit/s (e.g. 10M), shaped by the bandwidth plugin" },
    "egress-bandwidth": { type: "string", value: "QUANTITY", help: "the Pod's kubernetes.io/egress-bandwidth annotation in bit/s (e.g. 10M)" },
  },
  positionals: { min: 1, max: 2, names: ["<node>", "<name>"] },
} satisfies CommandSpec<FlagTable>;

const POD_REMOVE = {
  name: "mncni lab pod remove",
  args: "<node> <pod>",
  summary: "Removes a pod through CNI DEL, then its namespace and manifest. <pod> is the lab's name (pod2, or z/web for the web of namespace z), the Kubernetes name (node1-pod2) or <namespace>/<name> as `lab label pod` takes it.",
  flags: {
    name: NAME,
    grace: { type: "int", value: "SECONDS", default: 0, min: 0, max: 3600, help: "terminationGracePeriodSeconds: the pod's Service endpoints are terminating (not ready, still serving) this long before its DEL" },
  },
  positionals: { min: 2, max: 2, names: ["<node>", "<pod>"] },
} satisfies CommandSpec<FlagTable>;

export const POD: Group = {
  name: "mncni lab pod",
  verbs: {
    add: {
      args: "<node> [<name>]",
      summary: "add a pod through CNI ADD",
      run: async (argv) => {
        const p0 = parse(POD_ADD, argv);
        if (typeof p0 === "number") return p0;
        const [nodeName, podName] = p0.positionals;
        const { node, pod } = await locked(p0.flags.name, false, async () => {
          const s = requireState(p0.flags.name);
          const node = labNode(s, nodeName!);
          const pod = await addPod(s, node, podName, {
            namespace: p0.flags.namespace,
            labels: p0.flags.labels ? podLabelsFlag(p0.flags.labels) : undefined,
            ports: p0.flags.ports ? podPortsFlag(p0.flags.ports) : undefined,
            hostPorts: p0.flags["host-port"] ? hostPortsFlag(p0.flags["host-port"]) : undefined,
            bandwidth: { ingress: p0.flags["ingress-bandwidth"], egress: p0.flags["egress-bandwidth"] },
          });
          await refreshNodeEcho(s, node);
          // The endpoint-slice controller sees the new pod (ready once it answers).
          await syncEndpointSlices(s);
          return { node, pod };
        });
        say(`pod ${labPodRef(node, pod)} added: ${pod.ips.join(",")} (namespace ${pod.ns}, Kubernetes ${pod.namespace}/${k8sPodName(pod)})`);
        return 0;
      },
    },
    remove: {
      args: "<node> <pod>",
      summary: "remove a pod through CNI DEL",
      run: async (argv) => {
        const p0 = parse(POD_REMOVE, argv);
        if (typeof p0 === "number") return p0;
        const [nodeName, podName] = p0.positionals;
        const { pod, ref } = await locked(p0.flags.name, false, async () => {
          const s = requireState(p0.flags.name);
          const node = labNode(s, nodeName!);
          const pod = findNodePod(s, node, podName!);
          const ref = labPodRef(node, pod);
          if (p0.flags.grace > 0) {
            // As kubelet after a delete: the endpoint is terminating, the pod still answers until the grace period ends.
            await labObjects(s).terminatePod(pod);
            await syncEndpointSlices(s, { terminating: new Set([`${pod.namespace}/${k8sPodName(pod)}`]) });
            await Bun.sleep(p0.flags.grace * 1000);
          }
          await removePod(s, node, pod);
          await syncEndpointSlices(s);
          return { pod, ref };
        });
        say(`pod ${ref} removed (Kubernetes ${pod.namespace}/${k8sPodName(pod)})`);
        return 0;
      },
    },
  },
};

function podLabelsFlag(v: string): Record<string, string> {
  const c = parseLabelArgs(v.split(",").filter((x) => x !== ""));
  if (c.remove.length) throw new Error(`cannot use --labels "${v}": expected k=v,... (no removals)`);
  return c.set;
}

const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** NAME=PORT/PROTO,... with the API's rules for container port names (IANA_SVC_NAME: at most 15, a letter). */
function podPortsFlag(v: string): NonNullable<PodState["ports"]> {
  return v.split(",").filter((x) => x !== "").map((item) => {
    const m = /^([^=]+)=(\d+)(?:\/(TCP|UDP|SCTP))?$/i.exec(item);
    if (!m) throw new Error(`cannot use --ports item "${item}": expected NAME=PORT/PROTO`);
    const [, name, port, proto] = m;
    if (name!.length > 15 || !PORT_NAME.test(name!) || !/[a-z]/.test(name!)) throw new Error(`cannot use --ports name "${name}": at most 15 lower case alphanumerics and '-', with a letter`);
    const n = Number(port);
    if (n < 1 || n > 65535) throw new Error(`cannot use --ports port "${port}": must be 1..65535`);
    return { name: name!, containerPort: n, protocol: (proto ?? "TCP").toUpperCase() as Protocol };
  });
}

/** HOST:PORT/PROTO,... as a Pod's container ports with a hostPort. */
function hostPortsFlag(v: string): NonNullable<PodState["hostPorts"]> {
  return v.split(",").filter((x) => x !== "").map((item) => {
    const m = /^(\d+):(\d+)(?:\/(TCP|UDP|SCTP))?$/i.exec(item);
    if (!m) throw new Error(`cannot use --host-port item "${item}": expected HOST:PORT/PROTO`);
    const [hostPort, containerPort] = [Number(m[1]), Number(m[2])];
    for (const [what, n] of [["host port", hostPort], ["port", containerPort]] as const) {
      if (n < 1 || n > 65535) throw new Error(`cannot use --host-port ${what} "${n}": must be 1..65535`);
    }
    return { hostPort, containerPort, protocol: (m[3] ?? "TCP").toUpperCase() as Protocol };
  });
}
