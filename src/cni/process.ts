// Binds the dispatcher to the real process: environment, stdin, stdout. stdin and stdout
// go through libc: node:fs costs ~0.6 ms of start-up and process.stdout several ms.
import { phase } from "../base/phases.ts";
import { readAll, writeAll } from "../sys/libc.ts";
import type { PluginSpec } from "./plugin-spec.ts";
import type { PluginIO } from "./run.ts";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./types.ts";

/**
 * Runs before the dispatcher with the call's input read: answers the call some other way
 * (returns the exit code), or leaves it to the dispatcher (undefined). The resident server's
 * hand-off (src/serve/hand-off.ts) is one.
 */
export type Intercept = (io: PluginIO) => Promise<number | undefined>;

function readStdin(): Uint8Array {
  try {
    return readAll(0);
  } catch {
    return new Uint8Array();
  }
}

const print = (text: string) => writeAll(1, Buffer.from(text));

export async function runPluginProcess(spec: PluginSpec, intercept?: Intercept): Promise<number> {
  const env = process.env;
  // VERSION needs no config, and a terminal on stdin must not block it; nor is it logged.
  if (env.CNI_COMMAND === "VERSION") {
    print(JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + "\n");
    return 0;
  }
  const io: PluginIO = { env, stdin: readStdin(), stdout: print };
  phase("stdin");
  const code = intercept ? await intercept(io) : undefined;
  if (code !== undefined) return code;
  const { runPlugin } = await import("./run.ts");
  return runPlugin(spec, io);
}
