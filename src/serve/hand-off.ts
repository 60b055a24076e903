// The plugin process's side of the agent: before the dispatcher runs a call, hand it to the
// resident server the config names (src/serve/server.ts), and print the server's answer.
// The protocol core (src/cni/) knows nothing of this; it runs it as an Intercept.
import type { PluginSpec } from "../cni/plugin-spec.ts";
import type { PluginIO } from "../cni/run.ts";
import { phase } from "../base/phases.ts";
import { agentSocketOf, forward } from "./hand-off-client.ts";
import { FLAGS } from "./protocol.ts";

async function failWith(spec: PluginSpec, io: PluginIO, code: number, msg: string): Promise<number> {
  const run = await import("../cni/run.ts");
  return run.failWith(spec, io, code, msg);
}

/**
 * Calls that may run twice: DEL is idempotent (the spec asks it to succeed on what is already
 * gone), the others only read or collect. Only ADD must not be repeated.
 */
const REPEATABLE = new Set(["DEL", "CHECK", "STATUS", "GC", "VERSION"]);

/**
 * A server took the call and did not answer. An ADD is answered "try again": the server may
 * have done part of it, and the runtime retries (and DELs first). Anything else is done here:
 * a DEL answered "try again" makes containerd keep the sandbox NOTREADY until kubelet's next
 * StopPodSandbox, and the pod's address stays taken meanwhile.
 */
async function serverFailed(spec: PluginSpec, io: PluginIO, msg: string): Promise<number | undefined> {
  if (!REPEATABLE.has(io.env.CNI_COMMAND ?? "")) return failWith(spec, io, 11, msg);
  (io.stderr ?? ((t: string) => process.stderr.write(t)))(`${spec.name}: ${msg.replace(/; try again$/, "")}; doing the ${io.env.CNI_COMMAND} here\n`);
  return undefined;
}

/** The exit code of a call the server answered (or must not be run here); undefined: run it here. */
export async function handOff(spec: PluginSpec, io: PluginIO): Promise<number | undefined> {
  const env = io.env;
  // Run by the native forwarder (src/forward/forward.c): a server took the call and did not
  // answer; or the server was tried already.
  const failed = env[FLAGS.agentFailed];
  if (failed) return serverFailed(spec, io, failed);
  if (env[FLAGS.noAgent]) return undefined;
  phase("client");
  const socket = agentSocketOf(io.stdin);
  if (!socket) return undefined;
  try {
    const handed = forward(socket, env, io.stdin);
    if (!handed || "fallback" in handed) return undefined;
    if ("untrusted" in handed) {
      // Someone else's listener: it gets nothing, and the call is done here.
      (io.stderr ?? ((t: string) => process.stderr.write(t)))(`${spec.name}: not handing the call to ${socket}: ${handed.untrusted}; doing it here\n`);
      return undefined;
    }
    io.stdout(handed.stdout);
    return handed.code;
  } catch (e) {
    return serverFailed(spec, io, `mncni agent at ${socket}: ${(e as Error).message}; try again`);
  }
}
