// Binds the dispatcher to the real process: environment, stdin, stdout.
import { readFileSync, writeSync } from "node:fs";
import { runPlugin, type PluginSpec } from "./run.ts";

function readStdin(): Uint8Array {
  try {
    return readFileSync(0);
  } catch {
    return new Uint8Array();
  }
}

export async function runPluginProcess(spec: PluginSpec): Promise<number> {
  // VERSION needs no config, and a terminal on stdin must not block it.
  const stdin = process.env.CNI_COMMAND === "VERSION" ? new Uint8Array() : readStdin();
  return runPlugin(spec, {
    env: process.env,
    stdin,
    // writeSync: process.stdout costs ~2 ms of start-up to initialise, for one small write.
    stdout: (text) => void writeSync(1, text),
  });
}
