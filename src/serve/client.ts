// The plugin side of the CNI server: hand the call to a resident mncni and print its answer.
// This is the hot path of every CNI call when an agent runs, so it loads nothing but libc:
// no node:fs, no node:net (each costs a millisecond or more of start-up).
import { phase, phaseDurations } from "../obs/phases.ts";
import { BUILD } from "../version.ts";
import { closeFd, readAll, readLink, sym, type SysError, writeAll } from "../sys/libc.ts";
import { configAgentSocket, SERVE_PROTOCOL, type ServeRequest, type ServeResponse } from "./protocol.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const EAGAIN = 11;

/**
 * How long to wait for the answer. A server runs calls one at a time, each a few ms; this
 * bounds what a hung server can do to pod creation. $MNCNI_AGENT_TIMEOUT_MS overrides it.
 */
export const ANSWER_TIMEOUT_MS = 120_000;

/** The outcome to print, or `undefined`: no server took the call, run it in this process. */
export interface Forwarded {
  code: number;
  stdout: string;
}

/** The `agentSocket` of the config, if the config names one (anything odd: not forwarded). */
export function agentSocketOf(stdin: Uint8Array): string | undefined {
  return configAgentSocket(Buffer.from(stdin).toString("utf8"));
}

function sockaddrUn(path: string): Buffer {
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  addr.write(path, 2, "utf8");
  return addr;
}

const CNI_VARS = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "MNCNI_LOG_FILE"];

/**
 * Forwards one call. Returns undefined when the server is absent (cannot connect: no
 * socket, nobody listening) or declines; throws when a server took the call and then did
 * not answer (died, or no answer in time), because running it again here could do it twice.
 */
export function forward(socketPath: string, env: Record<string, string | undefined>, stdin: Uint8Array): Forwarded | undefined {
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const addr = sockaddrUn(socketPath);
    // Whatever stops the connection (no file, nobody listening, no permission), nothing ran.
    if (sym.connect(fd, addr, addr.length) < 0) return undefined;
    const timeoutMs = Number(env.MNCNI_AGENT_TIMEOUT_MS) > 0 ? Number(env.MNCNI_AGENT_TIMEOUT_MS) : ANSWER_TIMEOUT_MS;
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    sym.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length);
    const vars: Record<string, string> = {};
    for (const k of CNI_VARS) if (env[k] !== undefined) vars[k] = env[k]!;
    const req: ServeRequest = { protocol: SERVE_PROTOCOL, build: BUILD, netns: readLink("/proc/thread-self/ns/net"), env: vars, stdin: Buffer.from(stdin).toString("utf8") };
    phase("connect");
    req.clientPhases = phaseDurations();
    // One line; the connection stays open both ways, so the server sees this process go away.
    writeAll(fd, Buffer.from(JSON.stringify(req) + "\n"), `send to ${socketPath}`);
    let raw: Uint8Array;
    try {
      raw = readAll(fd, `receive from ${socketPath}`);
    } catch (e) {
      if ((e as SysError).errno === EAGAIN) throw new Error(`no answer from the mncni server at ${socketPath} within ${timeoutMs} ms`);
      throw e;
    }
    if (raw.length === 0) throw new Error(`the mncni server at ${socketPath} closed the connection without an answer`);
    const res = JSON.parse(Buffer.from(raw).toString("utf8")) as ServeResponse;
    return "fallback" in res ? undefined : res;
  } finally {
    closeFd(fd);
  }
}


