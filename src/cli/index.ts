// Subcommand table of the CLI. Each subcommand lives in its own file and is loaded on demand.
import { say } from "./output.ts";
import { VERSION } from "../base/version.ts";
import { dispatch, type Group } from "./subcommands.ts";

const lazy = (load: () => Promise<(argv: string[]) => Promise<number>>) => async (argv: string[]) => (await load())(argv);
const version = async () => (say(`mncni ${VERSION}`), 0);

const CLI: Group = {
  name: "mncni",
  intro: [`mncni ${VERSION} — a Kubernetes CNI plugin`, "", "As a CNI plugin: set CNI_COMMAND and pass the config on stdin (invoked as mncni-ipam: the IPAM plugin)."].join("\n"),
  bareIsHelp: true,
  verbs: {
    agent: { summary: "run the node agent (routes, masquerade, conflist, metrics)", run: lazy(async () => (await import("./agent.ts")).agentCommand) },
    controller: { summary: "node IPAM: give every Node pod CIDRs from the cluster CIDR (leader-elected)", run: lazy(async () => (await import("./controller.ts")).controllerCommand) },
    inspect: { summary: "how this node's pods are wired, and problems found", run: lazy(async () => (await import("./inspect.ts")).inspectCommand) },
    explain: { summary: "why a packet from SRC reaches DST (or not), hop by hop", run: lazy(async () => (await import("./explain.ts")).explainCommand) },

    status: { summary: "agent health, peers, conflist, served calls, problems", run: lazy(async () => (await import("./status.ts")).statusCommand) },
    ipam: { summary: "IPAM ranges, use and leaks (ipam show)", run: lazy(async () => (await import("./ipam.ts")).ipamCommand) },
    trace: { summary: "the CNI calls of this node, live with --follow", run: lazy(async () => (await import("./trace.ts")).traceCommand) },
    lab: { summary: "a multi-node cluster in network namespaces (up, check, status, list, exec, down)", run: lazy(async () => (await import("./lab.ts")).labCommand) },
    ui: { summary: "serve a web page: topology, live flows, explain on a click (127.0.0.1)", run: lazy(async () => (await import("./ui.ts")).uiCommand) },
    flows: { summary: "show this node's policy verdict log (--follow, --json)", run: lazy(async () => (await import("./flows.ts")).flowsCommand) },
    manifests: { summary: "print the Kubernetes install manifests (kubectl apply -f -)", run: lazy(async () => (await import("./manifests.ts")).manifestsCommand) },
    serve: { summary: "only execute CNI calls for plugin processes (the agent does too)", run: lazy(async () => (await import("./serve.ts")).serveCommand) },
    version: { summary: "print the version", run: version },
    "--version": { hidden: true, summary: "", run: version },
  },
};

export async function runCli(argv: string[]): Promise<number> {
  // The executable starts with JIT tier-up deferred (Makefile: a CNI call is over before the
  // JIT would pay back); the agent, the server and the lab run long: normal policy.
  Bun.unsafe.setJITPolicy?.(1);
  return dispatch(CLI, argv);
}
