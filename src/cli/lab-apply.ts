// `mncni lab apply -f` and `mncni lab delete -f`: the lab's NetworkPolicies,
// ClusterNetworkPolicies and Namespaces from manifests (the work: src/lab/k8s-objects.ts),
// under the lab's lock.
import { say } from "./output.ts";
import { applyObjects, deleteObjects, readAppliable } from "../lab/k8s-objects.ts";
import { requireState } from "../lab/state.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, locked, parse } from "./lab-common.ts";

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

function objects(verb: "apply" | "delete") {
  return async (argv: string[]): Promise<number> => {
    const p0 = parse(verb === "apply" ? APPLY : DELETE, argv);
    if (typeof p0 === "number") return p0;
    if (!p0.flags.file) throw new Error(`cannot ${verb}: -f FILE|DIR is required`);
    const objs = readAppliable(p0.flags.file);
    const said = await locked(p0.flags.name, false, async () => {
      const s = requireState(p0.flags.name);
      const said = verb === "apply" ? applyObjects(s, objs) : deleteObjects(s, objs);
      // A Service applied or deleted: the endpoint-slice controller follows.
      return objs.some((o) => o.kind === "Service") ? [...said, ...(await syncEndpointSlices(s))] : said;
    });
    for (const line of said) say(line);
    return 0;
  };
}

export const cmdApply = objects("apply");
export const cmdDelete = objects("delete");
