// Runs another CNI plugin (delegated IPAM, or a chained plugin for the lab's executor)
// from CNI_PATH with the caller's environment and the full config on stdin.
import { access, stat, X_OK } from "../sys/files.ts";
import { join } from "../sys/paths.ts";
import { CniError, ErrorCode } from "./errors.ts";
import type { CniCommand, CniEnv, Result } from "./types.ts";
import { fromWire } from "./version.ts";

export function findPlugin(type: string, path: readonly string[]): string {
  if (type.includes("/") || type === "." || type === "..") {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `invalid plugin type "${type}": must be a file name`);
  }
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      // A directory is "executable" too; only a file can be the plugin.
      access(candidate, X_OK);
      if (stat(candidate).isFile) return candidate;
    } catch {
      /* try the next directory */
    }
  }
  throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot find plugin "${type}" in CNI_PATH ${JSON.stringify(path.join(":"))}`);
}

export interface DelegateOptions {
  type: string;
  command: CniCommand;
  env: CniEnv;
  stdin: Uint8Array;
}

/** The child's environment: ours (so CNI_* pass through), with the command overridden. */
function childEnv(o: DelegateOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.CNI_COMMAND = o.command;
  env.CNI_CONTAINERID = o.env.containerId;
  env.CNI_NETNS = o.env.netns;
  env.CNI_IFNAME = o.env.ifname;
  env.CNI_ARGS = o.env.rawArgs;
  env.CNI_PATH = o.env.path.join(":");
  return env;
}

/**
 * Executes the plugin. ADD returns its Result (any version, decoded to 1.x); other
 * commands return undefined. A failing plugin's error JSON becomes a CniError with the
 * same code, so callers can pass it on unchanged.
 */
export async function delegate(o: DelegateOptions): Promise<Result | undefined> {
  const file = findPlugin(o.type, o.env.path);
  let proc;
  try {
    proc = Bun.spawn([file], { env: childEnv(o), stdin: o.stdin, stdout: "pipe", stderr: "inherit" });
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot execute plugin "${file}": ${(e as Error).message}`, "", { cause: e });
  }
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw errorFromOutput(file, code, out);
  if (o.command !== "ADD") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch {
    throw new CniError(ErrorCode.DecodingFailure, `cannot decode result of plugin "${o.type}": ${JSON.stringify(out.slice(0, 200))}`);
  }
  return fromWire(parsed, `result of ${o.type}`, configVersion(o.stdin));
}

/** The version the plugin was asked for: a result that omits cniVersion is in that version. */
function configVersion(stdin: Uint8Array): string | undefined {
  try {
    const v = (JSON.parse(Buffer.from(stdin).toString("utf8")) as { cniVersion?: unknown }).cniVersion;
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

function errorFromOutput(file: string, exitCode: number, out: string): CniError {
  try {
    const e = JSON.parse(out) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof e.code === "number" && typeof e.msg === "string") {
      return new CniError(e.code, e.msg, typeof e.details === "string" ? e.details : "");
    }
  } catch {
    /* not an error JSON: report the raw output */
  }
  return new CniError(ErrorCode.Internal, `plugin "${file}" failed with exit code ${exitCode}: ${out.trim().slice(0, 500)}`);
}
