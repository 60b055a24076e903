// The protocol dispatcher: environment and stdin in, one JSON document out, exit code.
// It takes its streams as parameters so it can be exercised without a process.
import { appendInvocation, DEFAULT_LOG_FILE } from "../obs/invocation-log.ts";
import { parseNetConf } from "./config.ts";
import { parseEnv } from "./env.ts";
import { CniError, ErrorCode } from "./errors.ts";
import type { CallContext, Handlers } from "./skel.ts";
import { SUPPORTED_VERSIONS, type CniCommand, type ErrorResult, type NetConf, type Result } from "./types.ts";
import { CURRENT_VERSION, isSupported, toWire } from "./version.ts";

export interface PluginIO {
  env: Record<string, string | undefined>;
  stdin: Uint8Array;
  stdout: (text: string) => void;
}

export interface PluginSpec {
  /** Name written to the invocation log ("mncni", "mncni-ipam"). */
  name: string;
  handlers: Handlers;
}

/** Best effort: the version to answer errors in, even when the config is invalid. */
function requestedVersion(stdin: Uint8Array): string {
  try {
    const v = (JSON.parse(Buffer.from(stdin).toString("utf8")) as { cniVersion?: unknown }).cniVersion;
    return isSupported(v) ? v : CURRENT_VERSION;
  } catch {
    return CURRENT_VERSION;
  }
}

function logFileOf(conf: NetConf | undefined): string {
  const f = conf?.logFile;
  return typeof f === "string" && f !== "" ? f : DEFAULT_LOG_FILE;
}

async function dispatch(command: CniCommand, h: Handlers, ctx: CallContext): Promise<Result | undefined> {
  switch (command) {
    case "ADD":
      return h.add(ctx);
    case "DEL":
      return void (await h.del(ctx));
    case "CHECK":
      return void (await h.check(ctx));
    case "STATUS":
      return void (await h.status(ctx));
    case "GC":
      return void (await h.gc(ctx));
    case "VERSION":
      throw new Error("unreachable: VERSION is answered before dispatch");
  }
}

export async function runPlugin(spec: PluginSpec, io: PluginIO): Promise<number> {
  const started = performance.now();
  let conf: NetConf | undefined;
  let command = io.env.CNI_COMMAND ?? "";
  let result: Result | undefined;
  let failure: CniError | undefined;
  try {
    const env = parseEnv(io.env);
    command = env.command;
    if (env.command === "VERSION") {
      io.stdout(JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + "\n");
      return 0;
    }
    conf = parseNetConf(io.stdin, env.command);
    result = await dispatch(env.command, spec.handlers, { env, conf, stdin: io.stdin });
    if (result) io.stdout(JSON.stringify(toWire(result, conf.cniVersion)) + "\n");
  } catch (e) {
    failure = CniError.from(e);
    const out: ErrorResult = { cniVersion: conf?.cniVersion ?? requestedVersion(io.stdin), code: failure.code, msg: failure.message };
    if (failure.details) out.details = failure.details;
    io.stdout(JSON.stringify(out) + "\n");
    if (failure.code === ErrorCode.Internal && failure.cause instanceof Error && failure.cause.stack) {
      process.stderr.write(`${spec.name}: ${failure.cause.stack}\n`);
    }
  }
  if (command !== "VERSION") {
    const args = io.env.CNI_ARGS ?? "";
    const arg = (k: string) => new RegExp(`(?:^|;)${k}=([^;]*)`).exec(args)?.[1];
    appendInvocation(logFileOf(conf), {
      time: new Date().toISOString(),
      plugin: spec.name,
      command,
      containerId: io.env.CNI_CONTAINERID || undefined,
      netns: io.env.CNI_NETNS || undefined,
      ifname: io.env.CNI_IFNAME || undefined,
      network: conf?.name,
      podNamespace: arg("K8S_POD_NAMESPACE"),
      podName: arg("K8S_POD_NAME"),
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      outcome: failure ? "error" : "ok",
      code: failure?.code,
      msg: failure?.message,
      ips: result?.ips?.map((i) => i.address),
    });
  }
  return failure ? 1 : 0;
}
