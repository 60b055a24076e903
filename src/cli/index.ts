// Subcommand table of the CLI. Each subcommand lives in its own file and is loaded on demand.
import { VERSION } from "../version.ts";

type Command = { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> };

const COMMANDS: Record<string, Command> = {
  agent: { summary: "run the node agent (routes, masquerade, conflist, metrics)", load: async () => (await import("./agent.ts")).agentCommand },
  controller: { summary: "node IPAM: give every Node pod CIDRs from the cluster CIDR (leader-elected)", load: async () => (await import("./controller.ts")).controllerCommand },
  lab: { summary: "a multi-node cluster in network namespaces (up, check, status, exec, down)", load: async () => (await import("./lab.ts")).labCommand },
  serve: { summary: "only execute CNI calls for plugin processes (the agent does too)", load: async () => (await import("./serve.ts")).serveCommand },
  version: { summary: "print the version", load: async () => async () => (console.log(`mncni ${VERSION}`), 0) },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return [
    `mncni ${VERSION} — a Kubernetes CNI plugin`,
    "",
    "As a CNI plugin: set CNI_COMMAND and pass the config on stdin (invoked as mncni-ipam: the IPAM plugin).",
    "",
    "Usage: mncni <command> [flags]",
    ...lines,
    "",
    "Run `mncni <command> --help` for the flags of a command.",
  ].join("\n");
}

export async function runCli(argv: string[]): Promise<number> {
  // The executable starts with JIT tier-up deferred (Makefile: a CNI call is over before the
  // JIT would pay back); the agent, the server and the lab run long: normal policy.
  Bun.unsafe.setJITPolicy?.(1);
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  if (name === "--version") return (console.log(`mncni ${VERSION}`), 0);
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`mncni: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await cmd.load())(rest);
}
