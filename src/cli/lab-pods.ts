// `mncni lab pods`: the lab's pods (src/lab/pod-list.ts), as a table or --json.
import { sayJson, sayRendered } from "./output.ts";
import { listPods } from "../lab/pod-list.ts";
import { apiView } from "../lab/api-view.ts";
import { requireState } from "../lab/state.ts";
import { formatLabPods } from "./text/lab-pods.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";

const PODS = {
  name: "mncni lab pods",
  summary: "The lab's pods: Kubernetes namespace and name, node, the lab's node/pod name (for exec and pod remove), addresses and labels (as kubectl get pods -o wide --show-labels).",
  flags: { name: NAME, json: JSON_OUT },
} satisfies CommandSpec<FlagTable>;

export async function cmdPods(argv: string[]): Promise<number> {
  const p0 = parse(PODS, argv);
  if (typeof p0 === "number") return p0;
  const s = requireState(p0.flags.name);
  const pods = listPods(s, (await apiView(s))?.podLabels);
  if (p0.flags.json) sayJson(pods);
  else sayRendered(pods, formatLabPods);
  return 0;
}
