// `mncni lab inspect <node>[/<pod>]`: how a lab node's pods are wired, as `mncni inspect` on
// that node (the node's view and cluster state: src/lab/places.ts; the work: src/obs/).
import { labCluster, labNode, labNodeView } from "../lab/places.ts";
import { agentReadyz } from "../lab/status.ts";
import { findNodePod } from "../lab/pods.ts";
import { k8sPodName } from "../lab/write-manifests.ts";
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
  // node1, node1/pod2, or node1/z/a (a pod of namespace z).
  const arg = p.positionals[0]!;
  const at = arg.indexOf("/");
  const node = at < 0 ? arg : arg.slice(0, at);
  const s = requireState(p.flags.name);
  const pod = at < 0 ? undefined : findNodePod(s, labNode(s, node), arg.slice(at + 1));
  // The cluster state the lab's agents read: their manifests directory.
  const view = labNodeView(s, node);
  const n = collectAttachments(view, await labCluster(s));
  // Why the pod MTU is what it is: the node's agent's account, as `mncni inspect` on the node asks it.
  const podMTU = view.podMTU === undefined ? undefined : podMTUView(view.podMTU, await agentReadyz(s, labNode(s, node)));
  if (podMTU) n.podMTU = podMTU;
  // The attachment by the Pod's Kubernetes namespace/name, as the plugin's result cache records it.
  return renderInspect(n, pod === undefined ? undefined : `${pod.namespace}/${k8sPodName(pod)}`, p.flags.json);
}
