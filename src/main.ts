// One executable, three roles: invoked as `mncni-ipam` it is the IPAM plugin; with
// CNI_COMMAND set it is the CNI plugin; otherwise it is the command-line tool.
// Roles are loaded with dynamic imports so a CNI call never evaluates the agent or lab.
import { phase } from "./obs/phases.ts";

phase("runtime");

async function main(): Promise<number> {
  const argv0 = process.argv0 || "";
  const invokedAs = argv0.slice(argv0.lastIndexOf("/") + 1);
  if (invokedAs.startsWith("mncni-ipam")) {
    const { runPluginProcess } = await import("./cni/process.ts");
    return runPluginProcess({ name: "mncni-ipam", handlers: async () => (await import("./ipam/index.ts")).ipamHandlers });
  }
  if (process.env.CNI_COMMAND) {
    // Handlers load lazily: VERSION and bad input are answered without evaluating them.
    const { runPluginProcess } = await import("./cni/process.ts");
    return runPluginProcess(
      { name: "mncni", handlers: async () => (await import("./plugin/handlers.ts")).pluginHandlers },
      () => import("./serve/client.ts"),
    );
  }
  const { runCli } = await import("./cli/index.ts");
  return runCli(process.argv.slice(2));
}

main().then(
  (code) => (process.exitCode = code),
  (err) => {
    process.stderr.write(`mncni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
