// `mncni lab apply -f` and `mncni lab delete -f`, with kubectl's semantics: repeated -f, a
// directory applies each of its files, one result line per object, a non-zero exit on a miss.
// On the kubernetes source the objects go through the lab's API server; on --source dir into the
// manifests directory (the work: src/lab/k8s-objects.ts).
import { say, sayError } from "./output.ts";
import { applyObjects, deleteObjects, readAppliable } from "../lab/k8s-objects.ts";
import { syncEndpointSlices } from "../lab/endpoint-slices.ts";
import { requireState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, locked, parse } from "./lab-common.ts";

const FILE = { type: "list", short: "f", value: "FILE|DIR", help: "a manifest file (YAML or JSON, several documents) or a directory of them" } as const;

const APPLY = {
  name: "mncni lab apply",
  args: "-f FILE|DIR [-f ...]",
  summary: "Creates or replaces NetworkPolicies, ClusterNetworkPolicies, Namespaces, Services and EndpointSlices; every document is validated first, a bad one refuses the whole apply.",
  flags: { name: NAME, file: FILE },
} satisfies CommandSpec<FlagTable>;

const DELETE = {
  name: "mncni lab delete",
  args: "-f FILE|DIR [-f ...]",
  summary: "Deletes the objects the manifests name (by kind, namespace and name); one that is not there fails the command.",
  flags: { name: NAME, file: FILE },
} satisfies CommandSpec<FlagTable>;

function objects(verb: "apply" | "delete") {
  return async (argv: string[]): Promise<number> => {
    const p0 = parse(verb === "apply" ? APPLY : DELETE, argv);
    if (typeof p0 === "number") return p0;
    if (!p0.flags.file.length) throw new Error(`cannot ${verb}: -f FILE|DIR is required`);
    return await locked(p0.flags.name, false, async () => {
      const s = requireState(p0.flags.name);
      const objs = readAppliable(p0.flags.file);
      const r = verb === "apply" ? await applyObjects(s, objs) : await deleteObjects(s, objs);
      const [done, failed] = "applied" in r ? [r.applied, r.failed] : [r.deleted, r.missing];
      for (const line of done) say(line);
      // A Service applied or deleted: the endpoint-slice controller follows.
      if (objs.some((o) => o.kind === "Service")) for (const line of await syncEndpointSlices(s)) say(line);
      for (const line of failed) sayError(line);
      return failed.length ? 1 : 0;
    });
  };
}

export const cmdApply = objects("apply");
export const cmdDelete = objects("delete");
