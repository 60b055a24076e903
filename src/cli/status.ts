// `mncni status`: the node's CNI at a glance (src/obs/status.ts).
import { sayJson, sayRendered } from "./output.ts";
import { collectAttachments } from "../obs/attachments.ts";
import { nodeStatus } from "../obs/status.ts";
import { formatStatus } from "./text/status.ts";
import { parseOrExit, type CommandSpec } from "./flags.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";

const FLAGS = {
  ...NODE_FLAGS,
  "agent-addr": { type: "string", value: "HOST:PORT", default: `127.0.0.1:${AGENT_HEALTH_PORT}`, help: "the agent's health and metrics address (its --metrics-addr)" },
} as const;

const STATUS = {
  name: "mncni status",
  summary: "Agent health with the reasons when not ready, the path to each peer, the conflist in use, CNI calls and their latency, version, problems found. The node is named by $NODE_NAME (set in the agent's pod), else the host name. Exit 1 when not ready or problems are found.",
  flags: FLAGS,
} satisfies CommandSpec<typeof FLAGS>;

export async function statusCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(STATUS, argv);
  if (typeof p === "number") return p;
  const v = viewFromFlags(p.flags, { healthAddr: p.flags["agent-addr"] });
  const s = await nodeStatus(v, collectAttachments(v));
  if (p.flags.json) sayJson(s);
  else sayRendered(s, formatStatus);
  return s.problems.length || !s.agent.ready ? 1 : 0;
}
