// One JSON line per CNI call, appended to a size-capped file with one rotated copy.
// Logging must never fail a CNI call: every error here is swallowed (and noted on stderr).
import { mkdir, rename, stat, writeText } from "../sys/files.ts";
import type { SysError } from "../sys/libc.ts";
import { dirname } from "../sys/paths.ts";

export const DEFAULT_LOG_FILE = "/var/log/mncni/cni.log";
const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

export interface InvocationRecord {
  time: string;
  plugin: string;
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  network?: string;
  podNamespace?: string;
  podName?: string;
  durationMs: number;
  outcome: "ok" | "error";
  code?: number;
  msg?: string;
  ips?: string[];
  /** Milliseconds per phase of the call, from the process start (see base/phases.ts). */
  phases?: Record<string, number>;
  /**
   * Present when a resident server ran the call for the plugin process: how long the call
   * waited in the server's queue, and the plugin process's phases up to handing it over.
   */
  served?: { queueMs: number; client?: Record<string, number> };
}

export function appendInvocation(file: string, rec: InvocationRecord, maxBytes = DEFAULT_MAX_BYTES): void {
  try {
    const line = JSON.stringify(rec) + "\n";
    try {
      if (stat(file).size + Buffer.byteLength(line) > maxBytes) rename(file, file + ".1");
    } catch (e) {
      if ((e as SysError).code !== "ENOENT") throw e;
      mkdir(dirname(file), { recursive: true });
    }
    writeText(file, line, { append: true, mode: 0o640 });
  } catch (e) {
    process.stderr.write(`mncni: cannot write invocation log "${file}": ${(e as Error).message}\n`);
  }
}
