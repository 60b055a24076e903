// The resident side: executes CNI calls handed over by plugin processes, one at a time, with
// the same dispatcher a plugin process uses. A resident process has its code loaded and
// compiled already, so a call costs the kernel work and little else.
import { lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import type { Socket, SocketHandler, UnixSocketListener } from "bun";
import type { PluginSpec, Resident } from "../cni/plugin-spec.ts";
import { errorAnswer, runPlugin } from "../cni/run.ts";
import { BUILD } from "../base/version.ts";
import { connectUnix } from "./hand-off-client.ts";
import { configAgentSocket, formatReply, SERVE_PROTOCOL, type ServeReply, type ServeRequest } from "./protocol.ts";
import { LinkReaper } from "./reaper.ts";
import { errnoName, sym } from "../sys/libc.ts";

const ECONNREFUSED = 111;

export interface CniServer {
  readonly socket: string;
  /** Calls answered since start (forwarded calls only; declined ones not counted). */
  readonly served: number;
  /** Stops accepting, waits for the call in progress, removes the socket file. */
  stop(): Promise<void>;
}

interface Conn {
  chunks: Buffer[];
  pending?: Buffer;
  /** The request line arrived (or the client half-closed): nothing more is read. */
  requested?: boolean;
  /** The plugin went away (gave up waiting, or was killed): its call is not started. */
  closed?: boolean;
}

/** An error answer to a call the server could not finish (see errorAnswer). */
function failure(req: ServeRequest, code: number, msg: string): ServeReply {
  return { code: 1, stdout: errorAnswer(Buffer.from(req.stdin, "utf8"), code, msg) };
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFile()) return "a regular file";
  if (st.isSymbolicLink()) return "a symbolic link";
  if (st.isFIFO()) return "a FIFO";
  return "not a socket";
}

/**
 * Makes the path free for this server's socket, or throws without touching it: only a
 * socket nobody answers on (left by a server that died) is removed. Anything else at the
 * path is somebody's: a file or directory, or the socket of a live server (during a rolling
 * update the new agent starts while the old one still serves).
 */
function claimSocketPath(path: string): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new Error(`cannot listen on socket "${path}": ${(e as Error).message}`);
  }
  if (!st.isSocket()) throw new Error(`cannot listen on socket "${path}": it is ${kindOf(st)}; nothing was removed`);
  const probe = connectUnix(path);
  if ("fd" in probe) {
    sym.close(probe.fd);
    throw new Error(`cannot listen on socket "${path}": another server answers on it; nothing was removed`);
  }
  if (probe.errno !== ECONNREFUSED) throw new Error(`cannot listen on socket "${path}": cannot tell whether a server answers on it (connect: ${errnoName(probe.errno)}); nothing was removed`);
  // A socket file left by a server that died refuses connections: the rename replaces it.
}

/** The identity of the file at path now, or undefined (gone). */
function fileId(path: string): string | undefined {
  try {
    const st = lstatSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Our own network namespace: calls from another one are declined (their host is not ours). */
function ownNetns(): string {
  return readlinkSync("/proc/thread-self/ns/net");
}

export interface CniServerOptions {
  socket: string;
  spec: PluginSpec;
  log?: (msg: string) => void;
  /**
   * Runs after a successful ADD, before it is answered (the agent programs the new pod's
   * policy there: in force before the pod starts). Its failure is logged; the answer stands.
   */
  afterAdd?: (env: Record<string, string>, stdout: string) => void | Promise<void>;
}

export function startCniServer(o: CniServerOptions): CniServer {
  const log = o.log ?? ((m: string) => process.stderr.write(`mncni serve: ${m}\n`));
  mkdirSync(dirname(o.socket), { recursive: true, mode: 0o700 });
  claimSocketPath(o.socket);
  // Calls stay in this process: the plugin sets up what it keeps between them, before the first.
  let resident: Resident | void = undefined;
  let queue: Promise<void> = Promise.resolve()
    .then(async () => void (resident = await o.spec.resident?.()))
    .catch((e) => log(`cannot prepare ${o.spec.name} for serving: ${(e as Error).message}`));
  let stopping = false;
  let served = 0;
  const reaper = new LinkReaper();
  /** Calls whose handler returned, waiting for links to be deleted before they are answered. */
  const finishing = new Set<Promise<void>>();

  async function answer(req: ServeRequest, receivedAt: number, later: Set<number>, gone: () => boolean): Promise<ServeReply> {
    if (stopping) return { fallback: "server stopping" };
    if (req.protocol !== SERVE_PROTOCOL) return { fallback: `protocol ${req.protocol}, server speaks ${SERVE_PROTOCOL}` };
    if (req.build !== BUILD) return { fallback: `plugin build ${req.build}, server build ${BUILD}` };
    if (req.netns !== ownNetns()) return { fallback: `plugin in ${req.netns}, server in ${ownNetns()}` };
    // The native forwarder finds the socket by a plain text search: the config must really
    // name this one (an unreadable config is left to the plugin, which reports it).
    if (configAgentSocket(req.stdin) !== o.socket) return { fallback: `the config does not name ${o.socket} as its agentSocket` };
    const startedAt = performance.now();
    for (;;) {
      let stdout = "";
      const code = await runPlugin(o.spec, {
        env: req.env,
        stdin: Buffer.from(req.stdin, "utf8"),
        stdout: (t) => void (stdout += t),
        served: { queueMs: performance.now() - receivedAt, clientPhases: req.clientPhases },
        // A set: a DEL run again unplugs (and hands over) the same link again.
        later: { deleteLink: (index) => void later.add(index) },
      });
      // Stopped by something the plugin will not wait for on this thread: wait here, with
      // the thread free for other work, and run the call again (see Resident.again).
      const again = resident?.again?.(startedAt);
      if (again && (await again) && !gone()) continue;
      if (code === 0 && req.env.CNI_COMMAND === "ADD" && o.afterAdd) {
        try {
          await o.afterAdd(req.env, stdout);
        } catch (e) {
          log(`cannot finish ADD of ${req.env.CNI_CONTAINERID ?? "?"}: ${(e as Error).message}`);
        }
      }
      served++;
      return { code, stdout };
    }
  }

  function send(sock: Socket<Conn>, res: ServeReply): void {
    if (sock.data.closed) return;
    sock.data.pending = Buffer.from(formatReply(res));
    flush(sock);
  }

  function flush(sock: Socket<Conn>): void {
    const p = sock.data.pending;
    if (!p) return;
    const n = sock.write(p);
    if (n < p.length) sock.data.pending = p.subarray(Math.max(n, 0));
    else {
      sock.data.pending = undefined;
      sock.end();
    }
  }

  /** The request is complete: parse it and queue the call. */
  function request(sock: Socket<Conn>): void {
    sock.data.requested = true;
    const receivedAt = performance.now();
    let req: ServeRequest;
    try {
      req = JSON.parse(Buffer.concat(sock.data.chunks).toString("utf8")) as ServeRequest;
    } catch (e) {
      send(sock, { fallback: `unreadable request: ${(e as Error).message}` });
      return;
    }
    // Calls run strictly one after the other: IPAM locks and namespace switches are per
    // process, not per call.
    queue = queue.then(async () => {
      // Let pending socket events in first: the previous call may have kept this thread busy
      // (a blocking lock) while this plugin gave up and closed its connection.
      await new Promise((r) => setImmediate(r));
      if (sock.data.closed) {
        log(`skipping ${req.env?.CNI_COMMAND} of ${req.env?.CNI_CONTAINERID}: its plugin process went away before the call started`);
        return;
      }
      let res: ServeReply;
      const later = new Set<number>();
      try {
        res = await answer(req, receivedAt, later, () => sock.data.closed === true);
      } catch (e) {
        // runPlugin turns every handler failure into a CNI error; this is a server bug.
        log(`call failed: ${(e as Error).stack ?? e}`);
        res = failure(req, 999, `mncni server: ${(e as Error).message}`);
      }
      if (later.size === 0) send(sock, res);
      else {
        // The next call need not wait for these deletions; this one is answered after them.
        const done = Promise.all([...later].map((i) => reaper.delete(i))).then(
          () => send(sock, res),
          (e) => {
            log(`cannot delete link: ${(e as Error).message}`);
            send(sock, failure(req, 11, `cannot delete host veth: ${(e as Error).message}; try again`));
          },
        );
        finishing.add(done);
        void done.finally(() => finishing.delete(done));
      }
      try {
        await resident?.afterAnswer?.();
      } catch (e) {
        log(`after answering ${req.env?.CNI_COMMAND} of ${req.env?.CNI_CONTAINERID ?? "?"}: ${(e as Error).message}`);
      }
    });
  }

  const handlers: SocketHandler<Conn> = {
    open(sock) {
      sock.data = { chunks: [] };
    },
    data(sock, chunk) {
      if (sock.data.requested) return; // one request per connection
      sock.data.chunks.push(Buffer.from(chunk));
      // A request is one line of JSON (JSON.stringify never writes a raw newline).
      if (chunk.includes(0x0a)) request(sock);
    },
    drain(sock) {
      flush(sock);
    },
    end(sock) {
      // Before its request line: a client that half-closes instead (its request ends here).
      // After it: the plugin went away (gave up waiting, or was killed).
      if (!sock.data.requested) request(sock);
      else sock.data.closed = true;
    },
    close(sock) {
      sock.data.closed = true;
    },
    error(_sock, e) {
      log(`connection error: ${e.message}`);
    },
  };

  // Bun's listener unlinks the path it bound when it stops, whatever is there by then (another
  // server's socket, after an upgrade replaced ours): bind a name of our own and rename it
  // into place, which also replaces a dead server's socket atomically. Whoever can connect
  // gets calls run as root: the socket is created owner-only (umask), not chmod-ed after.
  const bound = `${dirname(o.socket)}/.mncni-serve-${process.pid}.sock`;
  rmSync(bound, { force: true });
  const umask = process.umask(0o077);
  let listener: UnixSocketListener<Conn>;
  try {
    listener = Bun.listen<Conn>({ unix: bound, allowHalfOpen: true, socket: handlers });
  } finally {
    process.umask(umask);
  }
  try {
    renameSync(bound, o.socket);
  } catch (e) {
    listener.stop(true);
    throw new Error(`cannot listen on socket "${o.socket}": ${(e as Error).message}`);
  }
  // Removed on stop only if still ours: another server may have replaced it since.
  const ownSocket = fileId(o.socket);

  return {
    socket: o.socket,
    get served() {
      return served;
    },
    async stop() {
      // New connections are refused; queued calls are declined (their plugins run them); the
      // call in progress and pending deletions finish and are answered.
      stopping = true;
      listener.stop();
      await queue;
      await Promise.all(finishing);
      reaper.close();
      if (ownSocket !== undefined && fileId(o.socket) === ownSocket) rmSync(o.socket, { force: true });
    },
  };
}
