// `mncni inspect [POD|IP|CONTAINER_ID]`: how this node's pods are wired (src/obs/attachments.ts).
import { sayError, sayJson, sayRendered } from "./output.ts";
import { collectAttachments, findAttachment } from "../obs/attachments.ts";
import { formatAttachment, formatAttachmentTable } from "./text/inspect.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";

const INSPECT = {
  name: "mncni inspect",
  args: "[POD|IP|CONTAINER_ID]",
  summary: "Every attachment of this node (pod, veths, IPs, routes, neighbours, anti-spoofing, CNI history) and the problems found; with an argument, one attachment in full. Exit 1 when problems are found.",
  flags: {
    ...NODE_FLAGS,
    source: { type: "string", value: "SPEC", help: "the cluster source the agent reads (as its --source: dir:PATH, kubernetes, ...): names the policies selecting each pod" },
  },
  positionals: { max: 1, names: ["pod (namespace/name), IP or container ID"] },
} satisfies CommandSpec<FlagTable>;

export async function inspectCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(INSPECT, argv);
  if (typeof p === "number") return p;
  const cluster = p.flags.source ? await readClusterState(p.flags.source) : undefined;
  const n = collectAttachments(viewFromFlags(p.flags), cluster);
  return renderInspect(n, p.positionals[0], p.flags.json);
}

/** Shared with `mncni lab inspect`. */
export function renderInspect(n: ReturnType<typeof collectAttachments>, what: string | undefined, asJson: boolean): number {
  if (what !== undefined) {
    const a = findAttachment(n.attachments, what);
    if (!a) {
      sayError(`mncni inspect: cannot find attachment "${what}" on ${n.node}: no pod, address or container ID matches`);
      return 1;
    }
    if (asJson) sayJson(a);
    else sayRendered(a, formatAttachment);
    return a.problems.length ? 1 : 0;
  }
  if (asJson) sayJson(n);
  else sayRendered(n, formatAttachmentTable);
  return n.problems.length || n.attachments.some((a) => a.problems.length) ? 1 : 0;
}
