// `mncni lab node add | remove | restart-agent | mtu`: changing a running lab's nodes, under
// its lock (the work: src/lab/lab.ts, pod-mtu.ts).
import { addNode, nextNodeName, removeNode, restartAgent } from "../lab/lab.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
import { runtimeFor } from "../lab/runtimes.ts";
import { labNode } from "../lab/places.ts";
import { setUnderlayMTU } from "../lab/pod-mtu.ts";
import { plural, progress } from "../lab/progress.ts";
import { requireState, saveState } from "../lab/state.ts";
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

const NODE_RESTART_RUNTIME = {
  name: "mncni lab node restart-runtime",
  args: "<node>",
  summary: "Restarts the node's containerd alone (`lab up --runtime containerd`): its sandboxes keep running, as on a node whose containerd is restarted.",
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
          const node = await addNode(s, p0.positionals[0] ?? nextNodeName(s), v.pods, p);
          // Its pods may back Services; a LoadBalancer's router gets the node as a next hop.
          await syncEndpointSlices(s);
          return node;
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
          const s = requireState(p0.flags.name);
          const node = labNode(s, p0.positionals[0]!);
          await removeNode(s, node, p);
          await syncEndpointSlices(s);
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
          const s = requireState(p0.flags.name);
          const node = labNode(s, p0.positionals[0]!);
          return await restartAgent(s, node);
        });
        p.done(`node ${p0.positionals[0]}: agent restarted (pid ${pid})`);
        return 0;
      },
    },
    "restart-runtime": {
      args: "<node>",
      summary: "restart a node's containerd (--runtime containerd)",
      run: async (argv) => {
        const p0 = parse(NODE_RESTART_RUNTIME, argv);
        if (typeof p0 === "number") return p0;
        const p = progress({ quiet: p0.flags.quiet });
        const pid = await locked(p0.flags.name, false, async () => {
          const s = requireState(p0.flags.name);
          const node = labNode(s, p0.positionals[0]!);
          return await runtimeFor(s).restartNode(s, node);
        });
        p.done(`node ${p0.positionals[0]}: containerd restarted (pid ${pid})`);
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
          const s = requireState(p0.flags.name);
          const node = labNode(s, nodeName!);
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
