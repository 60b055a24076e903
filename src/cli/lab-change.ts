// `mncni lab node ...` and `mncni lab pod ...`: changing a running lab, under its lock.
import { say } from "./output.ts";
import { addNode, nextNodeName, removeNode, restartAgent } from "../lab/lab.ts";
import { addPod, refreshNodeEcho, removePod } from "../lab/pods.ts";
import { setUnderlayMTU } from "../lab/pod-mtu.ts";
import { plural, progress } from "../lab/progress.ts";
import { findNode, requireState, saveState } from "../lab/state.ts";
import { parseLabelArgs } from "../lab/k8s-objects.ts";
import { k8sPodName } from "../lab/write-manifests.ts";
import type { Protocol } from "../cluster/index.ts";
import type { PodState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, QUIET, locked, parse } from "./lab-common.ts";
import type { Group } from "./subcommands.ts";

const NODE_ADD = {
  name: "mncni lab node add",
  args: "[<name>]",
  summary: "Adds a node (default name: the first free nodeN) and its pods; the other nodes converge.",
  flags: { name: NAME, pods: { type: "int", default: 0, min: 0, max: 200, help: "pods on the new node" }, quiet: QUIET },
  positionals: { max: 1, names: ["<name>"] },
} satisfies CommandSpec<FlagTable>;

const NODE_REMOVE = {
  name: "mncni lab node remove",
  args: "<node>",
  summary: "Deletes the node's pods through CNI, then the node; the other nodes converge.",
  flags: { name: NAME, quiet: QUIET },
  positionals: { min: 1, max: 1, names: ["<node>"] },
} satisfies CommandSpec<FlagTable>;

const NODE_RESTART = {
  name: "mncni lab node restart-agent",
  args: "<node>",
  summary: "Restarts the node's agent (agent wiring) and waits until it is ready.",
  flags: { name: NAME, quiet: QUIET },
  positionals: { min: 1, max: 1, names: ["<node>"] },
} satisfies CommandSpec<FlagTable>;

const NODE_MTU = {
  name: "mncni lab node mtu",
  args: "<node> <mtu>",
  summary: "Sets the MTU of the node's underlay link (its eth0 and its switch port), waits for its agent's new pod MTU and publishes it on the Node (status condition MncniPodMTU).",
  flags: { name: NAME, quiet: QUIET },
  positionals: { min: 2, max: 2, names: ["<node>", "<mtu>"] },
} satisfies CommandSpec<FlagTable>;

const POD_ADD = {
  name: "mncni lab pod add",
  args: "<node> [<name>]",
  summary: "Adds a pod on a node through CNI ADD (default name: the node's first free podN).",
  flags: {
    name: NAME,
    namespace: { type: "string", value: "NS", default: "default", help: "the pod's Kubernetes namespace (created on first use, labelled kubernetes.io/metadata.name)" },
    labels: { type: "string", value: "k=v,...", help: "labels of the Pod (beside the lab's app and node)" },
    ports: { type: "string", value: "NAME=PORT/PROTO,...", help: "named container ports of the Pod (PROTO: TCP, UDP or SCTP; default TCP), for named ports in policies" },
  },
  positionals: { min: 1, max: 2, names: ["<node>", "<name>"] },
} satisfies CommandSpec<FlagTable>;

const POD_REMOVE = {
  name: "mncni lab pod remove",
  args: "<node> <pod>",
  summary: "Removes a pod through CNI DEL, then its namespace and manifest.",
  flags: { name: NAME },
  positionals: { min: 2, max: 2, names: ["<node>", "<pod>"] },
} satisfies CommandSpec<FlagTable>;

function nodeOf(lab: string, name: string) {
  const s = requireState(lab);
  const node = findNode(s, name);
  if (!node) throw new Error(`cannot find node "${name}" in lab "${s.name}" (nodes: ${s.nodes.map((n) => n.name).join(", ") || "none"})`);
  return { s, node };
}

export const NODE: Group = {
  name: "mncni lab node",
  verbs: {
    add: {
      args: "[<name>] [--pods N]",
      summary: "add a node",
      run: async (argv) => {
        const p0 = parse(NODE_ADD, argv);
        if (typeof p0 === "number") return p0;
        const v = p0.flags;
        const p = progress({ quiet: v.quiet });
        const node = await locked(v.name, false, async () => {
          const s = requireState(v.name);
          return await addNode(s, p0.positionals[0] ?? nextNodeName(s), v.pods, p);
        });
        p.done(`node ${node.name} added: ${[node.address, ...(node.address6 ? [node.address6] : [])].join(",")}, pods ${node.podCidrs.join(",")}, ${plural(node.pods.length, "pod")}`);
        return 0;
      },
    },
    remove: {
      args: "<node>",
      summary: "remove a node and its pods",
      run: async (argv) => {
        const p0 = parse(NODE_REMOVE, argv);
        if (typeof p0 === "number") return p0;
        const p = progress({ quiet: p0.flags.quiet });
        await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, p0.positionals[0]!);
          await removeNode(s, node, p);
        });
        p.done(`node ${p0.positionals[0]} removed`);
        return 0;
      },
    },
    "restart-agent": {
      args: "<node>",
      summary: "restart a node's agent",
      run: async (argv) => {
        const p0 = parse(NODE_RESTART, argv);
        if (typeof p0 === "number") return p0;
        const p = progress({ quiet: p0.flags.quiet });
        const pid = await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, p0.positionals[0]!);
          return await restartAgent(s, node);
        });
        p.done(`node ${p0.positionals[0]}: agent restarted (pid ${pid})`);
        return 0;
      },
    },
    mtu: {
      args: "<node> <mtu>",
      summary: "set a node's underlay MTU (agent wiring)",
      run: async (argv) => {
        const p0 = parse(NODE_MTU, argv);
        if (typeof p0 === "number") return p0;
        const [nodeName, value] = p0.positionals;
        if (!/^\d+$/.test(value!)) throw new Error(`cannot use MTU "${value}": not a number`);
        const p = progress({ quiet: p0.flags.quiet });
        const podMTU = await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, nodeName!);
          const mtu = await setUnderlayMTU(s, node, Number(value));
          saveState(s);
          return mtu;
        });
        p.done(`node ${nodeName}: underlay MTU ${value}, pod MTU ${podMTU} (published on its Node)`);
        return 0;
      },
    },
  },
};

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
          const { s, node } = nodeOf(p0.flags.name, nodeName!);
          const pod = await addPod(s, node, podName, {
            namespace: p0.flags.namespace,
            labels: p0.flags.labels ? podLabelsFlag(p0.flags.labels) : undefined,
            ports: p0.flags.ports ? podPortsFlag(p0.flags.ports) : undefined,
          });
          await refreshNodeEcho(s, node);
          return { node, pod };
        });
        say(`pod ${node.name}/${pod.name} added: ${pod.ips.join(",")} (namespace ${pod.ns}, Kubernetes ${pod.namespace}/${k8sPodName(pod)})`);
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
        await locked(p0.flags.name, false, async () => {
          const { s, node } = nodeOf(p0.flags.name, nodeName!);
          const pod = node.pods.find((x) => x.name === podName);
          if (!pod) throw new Error(`cannot find pod "${podName}" on node "${node.name}" (pods: ${node.pods.map((x) => x.name).join(", ") || "none"})`);
          await removePod(s, node, pod);
        });
        say(`pod ${nodeName}/${podName} removed`);
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
