// One executable, three roles: invoked as `mncni-ipam` it is the IPAM plugin; with
// CNI_COMMAND set it is the CNI plugin; otherwise it is the command-line tool.
// Roles are loaded with dynamic imports so a CNI call never evaluates the agent or lab.
import { phase } from "./base/phases.ts";
import { escapeControls } from "./base/text.ts";
import { ipamSpec, mncniSpec } from "./plugin-specs.ts";

phase("runtime");

async function main(): Promise<number> {
  const argv0 = process.argv0 || "";
  const invokedAs = argv0.slice(argv0.lastIndexOf("/") + 1);
  if (invokedAs.startsWith("mncni-ipam")) {
    const { runPluginProcess } = await import("./cni/process.ts");
    return runPluginProcess(ipamSpec);
  }
  if (process.env.CNI_COMMAND) {
    // The interface plugin hands its call to a resident server when its config names one.
    const { runPluginProcess } = await import("./cni/process.ts");
    return runPluginProcess(mncniSpec, async (io) => (await import("./serve/hand-off.ts")).handOff(mncniSpec, io));
  }
  const { runCli } = await import("./cli/index.ts");
  return runCli(process.argv.slice(2));
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    // A message may quote what a runtime or a user passed: no control character reaches the terminal.
    process.stderr.write(`mncni: ${escapeControls(err instanceof Error ? (err.stack ?? err.message) : String(err), { lines: true })}\n`);
    process.exitCode = 1;
  },
);
