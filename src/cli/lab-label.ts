// `mncni lab label pod|namespace ...`: labels of the lab's pods and Namespaces, as kubectl
// label sets them (the work: src/lab/k8s-objects.ts), under the lab's lock.
import { say } from "./output.ts";
import { labelNamespace, labelPod, parseLabelArgs } from "../lab/k8s-objects.ts";
import { requireState } from "../lab/state.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
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

function label(kind: "pod" | "namespace") {
  return async (argv: string[]): Promise<number> => {
    const p0 = parse(kind === "pod" ? LABEL_POD : LABEL_NS, argv);
    if (typeof p0 === "number") return p0;
    const [target, ...changes] = p0.positionals;
    const c = parseLabelArgs(changes);
    const said = await locked(p0.flags.name, false, async () => {
      const s = requireState(p0.flags.name);
      if (kind === "namespace") return labelNamespace(s, target!, c);
      // A pod's labels decide which Services it backs.
      return [...(await labelPod(s, target!, c)), ...(await syncEndpointSlices(s))];
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
