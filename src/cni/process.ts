// Binds the dispatcher to the real process: environment, stdin, stdout. stdin and stdout
// go through libc: node:fs costs ~0.6 ms of start-up and process.stdout several ms.
import { phase } from "../obs/phases.ts";
import { readAll, writeAll } from "../sys/libc.ts";
import type { PluginSpec } from "./run.ts";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./types.ts";

/** The resident-server client (src/serve/client.ts): small, it loads nothing but libc. */
type ServerClient = typeof import("../serve/client.ts");

function readStdin(): Uint8Array {
  try {
    return readAll(0);
  } catch {
    return new Uint8Array();
  }
}

const print = (text: string) => writeAll(1, Buffer.from(text));

export async function runPluginProcess(spec: PluginSpec, server?: () => Promise<ServerClient>): Promise<number> {
  const env = process.env;
  // VERSION needs no config, and a terminal on stdin must not block it; nor is it logged.
  if (env.CNI_COMMAND === "VERSION") {
    print(JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + "\n");
    return 0;
  }
  const stdin = readStdin();
  phase("stdin");
  // Run by the native forwarder (src/forward/forward.c): a server took the call and did not
  // answer, so answer "try again" without running it; or the server was tried already.
  if (env.MNCNI_AGENT_FAILED) {
    const { failWith } = await import("./run.ts");
    return failWith(spec, { env, stdin, stdout: print }, 11, env.MNCNI_AGENT_FAILED);
  }
  if (server && !env.MNCNI_NO_AGENT) {
    const client = await server();
    phase("client");
    const socket = client.agentSocketOf(stdin);
    if (socket) {
      try {
        const out = client.forward(socket, env, stdin);
        if (out) {
          print(out.stdout);
          return out.code;
        }
      } catch (e) {
        // A server took the call and did not answer: it may have done part of it, so running
        // it again here could do it twice. The runtime retries (and DELs first).
        const { failWith } = await import("./run.ts");
        return failWith(spec, { env, stdin, stdout: print }, 11, `mncni agent at ${socket}: ${(e as Error).message}; try again`);
      }
    }
  }
  const { runPlugin } = await import("./run.ts");
  return runPlugin(spec, { env, stdin, stdout: print });
}
