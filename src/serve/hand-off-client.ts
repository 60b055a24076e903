// The plugin side of the CNI server: hand the call to a resident mncni and print its answer.
// This is the hot path of every CNI call when an agent runs, so it loads nothing but libc:
// no node:fs, no node:net (each costs a millisecond or more of start-up).
import { phase, phaseDurations } from "../base/phases.ts";
import { BUILD } from "../base/version.ts";
import { closeFd, errno, readAll, readLink, sym, type SysError, writeAll } from "../sys/libc.ts";
import { configAgentSocket, FLAGS, FORWARDED_VARS, parseReply, SERVE_PROTOCOL, type ServeReply, type ServeRequest } from "./protocol.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_PEERCRED = 17;
const EAGAIN = 11;

/**
 * How long to wait for the answer. A server runs calls one at a time, each a few ms; this
 * bounds what a hung server can do to pod creation. $MNCNI_AGENT_TIMEOUT_MS overrides it.
 */
const ANSWER_TIMEOUT_MS = 120_000;

/**
 * What became of the hand-off: the server's reply, `untrusted` (something not ours listens
 * there: nothing was sent), or undefined (nobody listens). In the last two cases, and on a
 * `fallback` reply, the plugin runs the call itself.
 */
export type Handed = ServeReply | { untrusted: string } | undefined;

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

/**
 * Why the process listening on fd's peer end may not get the call, or undefined. The server
 * gets the whole config and environment and its answer is printed as the call's outcome: it
 * must be root's (the agent) or our own user's (a server we could have started ourselves).
 */
function untrustedPeer(fd: number): string | undefined {
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(cred.length, 0);
  if (sym.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) < 0) return `cannot read its credentials (SO_PEERCRED): errno ${errno()}`;
  const pid = cred.readInt32LE(0);
  const uid = cred.readUInt32LE(4);
  const euid = sym.geteuid();
  return uid === 0 || uid === euid ? undefined : `it runs as uid ${uid} (pid ${pid}), neither root nor this plugin's uid ${euid}`;
}

/** A connected AF_UNIX stream socket (close-on-exec), or why connect(2) failed. */
export function connectUnix(path: string): { fd: number } | { errno: number } {
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return { errno: errno() };
  const addr = sockaddrUn(path);
  if (sym.connect(fd, addr, addr.length) === 0) return { fd };
  const err = errno();
  closeFd(fd);
  return { errno: err };
}

/**
 * Forwards one call. Returns undefined when the server is absent (cannot connect: no
 * socket, nobody listening); throws when a server took the call and then did not answer
 * (died, or no answer in time), because running it again here could do it twice.
 */
export function forward(socketPath: string, env: Record<string, string | undefined>, stdin: Uint8Array): Handed {
  // Whatever stops the connection (no file, nobody listening, no permission), nothing ran.
  const conn = connectUnix(socketPath);
  if (!("fd" in conn)) return undefined;
  const fd = conn.fd;
  try {
    const untrusted = untrustedPeer(fd);
    if (untrusted) return { untrusted };
    const timeout = Number(env[FLAGS.timeoutMs]);
    const timeoutMs = timeout > 0 ? timeout : ANSWER_TIMEOUT_MS;
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    sym.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, tv.length);
    const vars: Record<string, string> = {};
    for (const k of FORWARDED_VARS) if (env[k] !== undefined) vars[k] = env[k]!;
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
    const reply = parseReply(Buffer.from(raw).toString("utf8"));
    if (!reply) throw new Error(`the mncni server at ${socketPath} sent an unreadable answer`);
    return reply;
  } finally {
    closeFd(fd);
  }
}
