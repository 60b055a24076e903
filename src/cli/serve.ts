// `mncni serve`: only the CNI server (the agent runs it too, see --cni-socket): plugin
// processes whose config names this socket in `agentSocket` hand their calls to it.
import { sayError } from "./output.ts";
import { startCniServer } from "../serve/server.ts";
import { DEFAULT_CNI_SOCKET } from "../serve/protocol.ts";
import { parseOrExit, type CommandSpec, type FlagTable } from "./flags.ts";

const SERVE = {
  name: "mncni serve",
  summary: `Executes CNI calls for mncni plugin processes whose network config has
"agentSocket": PATH, in this process (code loaded once, calls one at a time).
A plugin falls back to doing the call itself when nothing listens on PATH.`,
  flags: {
    socket: {
      type: "string",
      value: "PATH",
      default: DEFAULT_CNI_SOCKET,
      help: "unix socket to listen on",
      check: (v: string) => (v.startsWith("/") ? null : "must be an absolute path"),
    },
  },
} satisfies CommandSpec<FlagTable>;

export async function serveCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(SERVE, argv);
  if (typeof p === "number") return p;
  const { socket } = p.flags;
  const { mncniSpec } = await import("../plugin-specs.ts");
  let server;
  try {
    server = startCniServer({ socket, spec: mncniSpec });
  } catch (e) {
    sayError(`mncni serve: ${(e as Error).message}`);
    return 1;
  }
  sayError(`mncni serve: listening on ${socket}`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
  await server.stop();
  return 0;
}
