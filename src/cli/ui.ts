// `mncni ui`: the web page beside this node's agent (the cluster from --source, this node's
// verdict log, explain from this node); docs/ui.md. The work: src/ui/.
import { NodeSource } from "../ui/node-source.ts";
import { parseOrExit, type CommandSpec } from "./flags.ts";
import { viewFromFlags } from "./node-flags.ts";
import { UI_FLAGS, serveUi } from "./ui-serve.ts";
import { DEFAULT_CACHE_DIR, DEFAULT_CONF_DIR } from "../cni/node-view.ts";
import { AGENT_HEALTH_PORT } from "../base/ports.ts";

const FLAGS = {
  ...UI_FLAGS,
  source: { type: "string", value: "SPEC", help: "the cluster source the agent reads (as its --source: kubernetes, dir:/path): nodes, pods, policies" },
  services: { type: "boolean", help: "show Services too (the agent's identity lists them when it runs --service-proxy)" },
  "flow-log": { type: "string", value: "FILE", default: "/var/log/mncni/flows.log", help: "the agent's --flow-log" },
  "cni-conf-dir": { type: "string", value: "DIR", default: DEFAULT_CONF_DIR, help: "where the conflist is" },
  "cache-dir": { type: "string", value: "DIR", default: DEFAULT_CACHE_DIR, help: "the runtime's CNI result cache" },
  "log-file": { type: "string", value: "FILE", help: "the invocation log (default: the conflist's logFile)" },
  "agent-addr": { type: "string", value: "HOST:PORT", default: `127.0.0.1:${AGENT_HEALTH_PORT}`, help: "the agent's health address (its --metrics-addr)" },
} as const;

const UI = {
  name: "mncni ui",
  summary: "Serve a web page of the cluster seen from this node: topology, live policy verdicts with filters, explain on a click (with the traced probe), policies. On 127.0.0.1 unless --address (then with a token).",
  flags: FLAGS,
  positionals: { max: 0 },
} satisfies CommandSpec<typeof FLAGS>;

export async function uiCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(UI, argv);
  if (typeof p === "number") return p;
  const view = viewFromFlags(p.flags, { healthAddr: p.flags["agent-addr"] });
  const source = new NodeSource({ view, flowLog: p.flags["flow-log"], services: p.flags.services, ...(p.flags.source ? { source: p.flags.source } : {}) });
  return serveUi(UI.name, source, p.flags);
}
