// `mncni lab inspect <node>[/<pod>]`: how a lab node's pods are wired, as `mncni inspect` on
// that node (the node's view and cluster state: src/lab/places.ts; the work: src/obs/).
import { labCluster, labNode, labNodeView } from "../lab/places.ts";
import { agentReadyz } from "../lab/status.ts";
import { podMTUView } from "../obs/pod-mtu.ts";
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
  const view = labNodeView(s, node!);
  const n = collectAttachments(view, await labCluster(s));
  // Why the pod MTU is what it is: the node's agent's account, as `mncni inspect` on the node asks it.
  const podMTU = view.podMTU === undefined ? undefined : podMTUView(view.podMTU, await agentReadyz(s, labNode(s, node!)));
  if (podMTU) n.podMTU = podMTU;
  // The lab names pods "<node>-<pod>" in the Kubernetes sense.
  return renderInspect(n, pod === undefined ? undefined : `${node}-${pod}`, p.flags.json);
}
