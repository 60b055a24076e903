// The plugin side of the CNI server: hand the call to a resident mncni and print its answer.
// This is the hot path of every CNI call when an agent runs, so it loads nothing but libc:
// no node:fs, no node:net (each costs a millisecond or more of start-up).
import { phase, phaseDurations } from "../obs/phases.ts";
import { BUILD } from "../version.ts";
import { closeFd, errno, readAll, readLink, sym, SysError, writeAll } from "../sys/libc.ts";
import { MAX_SOCKET_PATH, SERVE_PROTOCOL, type ServeRequest, type ServeResponse } from "./protocol.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SHUT_WR = 1;
const ECONNREFUSED = 111;
const ENOENT = 2;

/** The outcome to print, or `undefined`: no server took the call, run it in this process. */
export interface Forwarded {
  code: number;
  stdout: string;
}

/** The `agentSocket` of the config, if the config names one (anything odd: not forwarded). */
export function agentSocketOf(stdin: Uint8Array): string | undefined {
  try {
    const conf: unknown = JSON.parse(Buffer.from(stdin).toString("utf8"));
    const path = (conf as { agentSocket?: unknown } | null)?.agentSocket;
    return typeof path === "string" && path.startsWith("/") && Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
  } catch {
    return undefined;
  }
}

function sockaddrUn(path: string): Buffer {
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  addr.write(path, 2, "utf8");
  return addr;
}

const CNI_VARS = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "MNCNI_LOG_FILE"];

/**
 * Forwards one call. Returns undefined when the server is absent (no socket, nobody
 * listening) or declines; throws only when a server took the call and then failed to
 * answer, because running it again here could do it twice.
 */
export function forward(socketPath: string, env: Record<string, string | undefined>, stdin: Uint8Array): Forwarded | undefined {
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const addr = sockaddrUn(socketPath);
    if (sym.connect(fd, addr, addr.length) < 0) {
      const e = errno();
      if (e === ENOENT || e === ECONNREFUSED) return undefined;
      throw new SysError(`connect ${socketPath}`, e);
    }
    const vars: Record<string, string> = {};
    for (const k of CNI_VARS) if (env[k] !== undefined) vars[k] = env[k]!;
    const req: ServeRequest = { protocol: SERVE_PROTOCOL, build: BUILD, netns: readLink("/proc/thread-self/ns/net"), env: vars, stdin: Buffer.from(stdin).toString("utf8") };
    phase("connect");
    req.clientPhases = phaseDurations();
    writeAll(fd, Buffer.from(JSON.stringify(req)), `send to ${socketPath}`);
    sym.shutdown(fd, SHUT_WR);
    const raw = readAll(fd, `receive from ${socketPath}`);
    if (raw.length === 0) throw new Error(`the mncni server at ${socketPath} closed the connection without an answer`);
    const res = JSON.parse(Buffer.from(raw).toString("utf8")) as ServeResponse;
    return "fallback" in res ? undefined : res;
  } finally {
    closeFd(fd);
  }
}


