// `mncni lab inspect <node>[/<pod>]`: how a lab node's pods are wired, as `mncni inspect` on
// that node (the node's view and cluster state: src/lab/places.ts; the work: src/obs/).
import { labCluster, labNodeView } from "../lab/places.ts";
import { requireState } from "../lab/state.ts";
import { collectAttachments } from "../obs/attachments.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { renderInspect } from "./inspect.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";

const INSPECT = {
  name: "mncni lab inspect",
  args: "<node>[/<pod>]",
  summary: "How a lab node's pods are wired (as `mncni inspect` on that node); with /<pod>, that pod in full. Exit 1 when problems are found.",
  flags: { name: NAME, json: JSON_OUT },
  positionals: { min: 1, max: 1, names: ["node or node/pod"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdInspect(argv: string[]): Promise<number> {
  const p = parse(INSPECT, argv);
  if (typeof p === "number") return p;
  const [node, pod] = p.positionals[0]!.split("/", 2);
  const s = requireState(p.flags.name);
  // The cluster state the lab's agents read: their manifests directory.
  const n = collectAttachments(labNodeView(s, node!), await labCluster(s));
  // The lab names pods "<node>-<pod>" in the Kubernetes sense.
  return renderInspect(n, pod === undefined ? undefined : `${node}-${pod}`, p.flags.json);
}
