// `mncni inspect [POD|IP|CONTAINER_ID]`: how this node's pods are wired (src/obs/attachments.ts).
import { sayError, sayJson, sayRendered } from "./output.ts";
import { collectAttachments, findAttachment } from "../obs/attachments.ts";
import { formatAttachment, formatAttachmentTable } from "./text/inspect.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";
import { fetchReadyz, podMTUView } from "../obs/pod-mtu.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";

const INSPECT = {
  name: "mncni inspect",
  args: "[POD|IP|CONTAINER_ID]",
  summary: "Every attachment of this node (pod, veths, IPs, routes, neighbours, anti-spoofing, CNI history) and the problems found; with an argument, one attachment in full. Exit 1 when problems are found.",
  flags: {
    ...NODE_FLAGS,
    source: { type: "string", value: "SPEC", help: "the cluster source the agent reads (as its --source: dir:PATH, kubernetes, ...): names the policies selecting each pod" },
    "agent-addr": { type: "string", value: "HOST:PORT", default: `127.0.0.1:${AGENT_HEALTH_PORT}`, help: "the agent's health address (its --metrics-addr): why the pod MTU is what it is" },
  },
  positionals: { max: 1, names: ["pod (namespace/name), IP or container ID"] },
} satisfies CommandSpec<FlagTable>;

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(INSPECT, argv);
  if (typeof p === "number") return p;
  const v = viewFromFlags(p.flags);
  // With the fast path, a Service backend's reason to take the stack is in its EndpointSlices.
  const cluster = p.flags.source ? await readClusterState(p.flags.source, v.fastPath ? { services: true } : {}) : undefined;
  const n = collectAttachments(v, cluster);
  const agent = v.podMTU === undefined ? undefined : await fetchReadyz(p.flags["agent-addr"], 1000).then((b) => ({ podMTU: b.podMTU }), (e: Error) => ({ error: `${p.flags["agent-addr"]}: ${e.message}` }));
  const podMTU = podMTUView(v.podMTU, agent);
  return renderInspect(podMTU ? { ...n, podMTU } : n, p.positionals[0], p.flags.json);
}

/** Shared with `mncni lab inspect`. */
export function renderInspect(n: ReturnType<typeof collectAttachments>, what: string | undefined, asJson: boolean): number {
  if (what !== undefined) {
    const a = findAttachment(n.attachments, what);
    if (!a) {
      sayError(`mncni inspect: cannot find attachment "${what}" on ${n.node}: no pod, address or container ID matches`);
      return 1;
    }
    if (asJson) sayJson(n.podMTU ? { ...a, nodePodMTU: n.podMTU } : a);
    else sayRendered(a, (x) => formatAttachment(x, n.podMTU));
    return a.problems.length ? 1 : 0;
  }
  if (asJson) sayJson(n);
  else sayRendered(n, formatAttachmentTable);
  return n.problems.length || n.attachments.some((a) => a.problems.length) ? 1 : 0;
}
