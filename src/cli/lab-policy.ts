// `mncni lab label ...`, `mncni lab apply -f`, `mncni lab delete -f`: the lab's Kubernetes
// objects for policy (labels, Namespaces, NetworkPolicy, ClusterNetworkPolicy), under its lock.
import { say } from "./output.ts";
import { applyObjects, deleteObjects, labelNamespace, labelPod, parseLabelArgs, readAppliable } from "../lab/k8s-objects.ts";
import { requireState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, locked, parse } from "./lab-common.ts";
import type { Group } from "./subcommands.ts";

const LABEL_POD = {
  name: "mncni lab label pod",
  args: "<namespace>/<pod> <key>=<value>... [<key>-...]",
  summary: "Sets (adds or overwrites) and removes labels of a pod, as kubectl label does; the agents see the change.",
  flags: { name: NAME },
  positionals: { min: 2, names: ["<namespace>/<pod>", "<key>=<value>|<key>-"] },
  notes: "The pod is its Kubernetes name (<node>-<pod>, as in `lab status`) or the lab's pod name when unique in the namespace. Overwrites are said so.",
} satisfies CommandSpec<FlagTable>;

const LABEL_NS = {
  name: "mncni lab label namespace",
  args: "<namespace> <key>=<value>... [<key>-...]",
  summary: "Sets and removes labels of a Namespace (kubernetes.io/metadata.name is fixed).",
  flags: { name: NAME },
  positionals: { min: 2, names: ["<namespace>", "<key>=<value>|<key>-"] },
} satisfies CommandSpec<FlagTable>;

const FILE = { type: "string", short: "f", value: "FILE|DIR", help: "a manifest file (YAML or JSON, several documents) or a directory of them" } as const;

const APPLY = {
  name: "mncni lab apply",
  args: "-f FILE|DIR",
  summary: "Creates or replaces NetworkPolicies, ClusterNetworkPolicies and Namespaces; every document is validated first, a bad one refuses the whole apply.",
  flags: { name: NAME, file: FILE },
} satisfies CommandSpec<FlagTable>;

const DELETE = {
  name: "mncni lab delete",
  args: "-f FILE|DIR",
  summary: "Deletes the objects the manifests name (by kind, namespace and name).",
  flags: { name: NAME, file: FILE },
} satisfies CommandSpec<FlagTable>;

function label(kind: "pod" | "namespace") {
  return async (argv: string[]): Promise<number> => {
    const p0 = parse(kind === "pod" ? LABEL_POD : LABEL_NS, argv);
    if (typeof p0 === "number") return p0;
    const [target, ...changes] = p0.positionals;
    const c = parseLabelArgs(changes);
    const said = await locked(p0.flags.name, false, async () => {
      const s = requireState(p0.flags.name);
      return kind === "pod" ? labelPod(s, target!, c) : labelNamespace(s, target!, c);
    });
    for (const line of said) say(line);
    return 0;
  };
}

function objects(verb: "apply" | "delete") {
  return async (argv: string[]): Promise<number> => {
    const p0 = parse(verb === "apply" ? APPLY : DELETE, argv);
    if (typeof p0 === "number") return p0;
    if (!p0.flags.file) throw new Error(`cannot ${verb}: -f FILE|DIR is required`);
    const objs = readAppliable(p0.flags.file);
    const said = await locked(p0.flags.name, false, async () => {
      const s = requireState(p0.flags.name);
      return verb === "apply" ? applyObjects(s, objs) : deleteObjects(s, objs);
    });
    for (const line of said) say(line);
    return 0;
  };
}

export const LABEL: Group = {
  name: "mncni lab label",
  verbs: {
    pod: { args: "<ns>/<pod> k=v... [k-]", summary: "label a pod", run: label("pod") },
    namespace: { args: "<ns> k=v... [k-]", summary: "label a namespace", run: label("namespace") },
  },
};

export const cmdApply = objects("apply");
export const cmdDelete = objects("delete");
