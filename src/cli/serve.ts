// `mncni serve`: only the CNI server (the agent runs it too, see --cni-socket): plugin
// processes whose config names this socket in `agentSocket` hand their calls to it.
import { startCniServer } from "../serve/server.ts";
import { DEFAULT_CNI_SOCKET } from "../serve/protocol.ts";

const HELP = `Usage: mncni serve [--socket PATH]

Executes CNI calls for mncni plugin processes whose network config has
"agentSocket": PATH, in this process (code loaded once, calls one at a time).
A plugin falls back to doing the call itself when nothing listens on PATH.

  --socket PATH   unix socket to listen on (default ${DEFAULT_CNI_SOCKET})`;

export async function serveCommand(argv: string[]): Promise<number> {
  let socket = DEFAULT_CNI_SOCKET;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--help" || a === "-h") return (console.log(HELP), 0);
    const [flag, inline] = a.split("=", 2) as [string, string | undefined];
    if (flag === "--socket") {
      const v = inline ?? argv[++i];
      if (!v || !v.startsWith("/")) return (console.error("mncni serve: --socket needs an absolute path"), 2);
      socket = v;
    } else {
      console.error(`mncni serve: unknown flag "${a}"\n\n${HELP}`);
      return 2;
    }
  }
  const { mncniSpec } = await import("../plugin-specs.ts");
  let server;
  try {
    server = startCniServer({ socket, spec: mncniSpec });
  } catch (e) {
    console.error(`mncni serve: ${(e as Error).message}`);
    return 1;
  }
  process.stderr.write(`mncni serve: listening on ${socket}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await server.stop();
  return 0;
}
