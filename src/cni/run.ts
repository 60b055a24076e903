// The protocol dispatcher: environment and stdin in, one JSON document out, exit code.
// It takes its streams as parameters so it can be exercised without a process.
import { appendInvocation, DEFAULT_LOG_FILE } from "./invocation-log.ts";
import { phase, phaseDurations, resetPhases } from "../base/phases.ts";
import { parseNetConf } from "./config.ts";
import { parseEnv } from "./env.ts";
import { CniError, ErrorCode } from "./errors.ts";
import type { CallContext, Handlers, Later, PluginSpec } from "./plugin-spec.ts";
import { SUPPORTED_VERSIONS, type CniCommand, type ErrorResult, type NetConf, type Result } from "./types.ts";
import { CURRENT_VERSION, isSupported, toWire } from "./version.ts";

export interface PluginIO {
  env: Record<string, string | undefined>;
  stdin: Uint8Array;
  stdout: (text: string) => void;
  /** Diagnostics (stack traces of internal errors); process.stderr when absent. */
  stderr?: (text: string) => void;
  /** Set when a resident server runs the call for a plugin process (src/serve). */
  served?: { queueMs: number; clientPhases?: Record<string, number> };
  /** Passed to handlers as ctx.later (a resident server). */
  later?: Later;
}

/**
 * Best effort, for calls that fail before the config is validated (bad env, bad config):
 * the raw config still says which version to answer in and where to log the failure.
 */
function peekConf(stdin: Uint8Array): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(stdin).toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function answerVersion(conf: Record<string, unknown>): string {
  return isSupported(conf.cniVersion) ? conf.cniVersion : CURRENT_VERSION;
}

/** The CNI error JSON for a call that did not run, in the version its config asks for. */
export function errorAnswer(stdin: Uint8Array, code: number, msg: string): string {
  const out: ErrorResult = { cniVersion: answerVersion(peekConf(stdin)), code, msg };
  return JSON.stringify(out) + "\n";
}

/** The config's logFile; else $MNCNI_LOG_FILE (for calls whose config is unreadable); else the default. */
function logFileOf(conf: Record<string, unknown>, env: PluginIO["env"]): string {
  const f = conf.logFile;
  if (typeof f === "string" && f !== "") return f;
  return env.MNCNI_LOG_FILE || DEFAULT_LOG_FILE;
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
  if (io.served) resetPhases();
  else phase("protocol");
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
    phase("config");
    const handlers = typeof spec.handlers === "function" ? await spec.handlers() : spec.handlers;
    phase("load");
    result = await dispatch(env.command, handlers, { env, conf, stdin: io.stdin, later: io.later });
    if (result) io.stdout(JSON.stringify(toWire(result, conf.cniVersion)) + "\n");
    phase("result");
  } catch (e) {
    failure = CniError.from(e);
    const out: ErrorResult = { cniVersion: conf?.cniVersion ?? answerVersion(peekConf(io.stdin)), code: failure.code, msg: failure.message };
    if (failure.details) out.details = failure.details;
    io.stdout(JSON.stringify(out) + "\n");
    if (failure.code === ErrorCode.Internal && failure.cause instanceof Error && failure.cause.stack) {
      (io.stderr ?? ((t: string) => process.stderr.write(t)))(`${spec.name}: ${failure.cause.stack}\n`);
    }
  }
  if (command !== "VERSION") {
    const args = io.env.CNI_ARGS ?? "";
    const arg = (k: string) => new RegExp(`(?:^|;)${k}=([^;]*)`).exec(args)?.[1];
    appendInvocation(logFileOf(conf ?? peekConf(io.stdin), io.env), {
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
      phases: phaseDurations(),
      served: io.served ? { queueMs: round2(io.served.queueMs), client: io.served.clientPhases } : undefined,
    });
  }
  resetPhases(); // a process running several calls (tests) starts each one afresh
  return failure ? 1 : 0;
}

const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** Answers a call with an error without running it (logged like any other call). */
export function failWith(spec: PluginSpec, io: PluginIO, code: number, msg: string): Promise<number> {
  return runPlugin({ ...spec, handlers: () => Promise.reject(new CniError(code, msg)) }, io);
}
