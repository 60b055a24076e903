// The traffic pair of `lab check`: a TCP server that answers every connection with the source
// address it sees (and its own address: which backend a Service chose), and a probe that connects to targets and reports those answers. Both run
// as hidden subcommands of the mncni executable inside a namespace (ip netns exec).
import { connect } from "node:net";
import { connectError, describeErrno } from "../obs/probe.ts";
import { errnoName } from "../sys/libc.ts";

/** "::ffff:10.0.0.1" (a v4 client on a dual-stack socket) -> "10.0.0.1". */
export function plainAddress(a: string | undefined): string {
  return (a ?? "").replace(/^::ffff:/, "");
}

export function serveEcho(opts: { port: number; hostname?: string }): { stop(): void } {
  const server = Bun.listen({
    hostname: opts.hostname ?? "0.0.0.0",
    port: opts.port,
    socket: {
      open(sock) {
        // The client's address as seen, then the server's own: behind a Service, which backend answered.
        sock.end(`${plainAddress(sock.remoteAddress)} ${plainAddress(sock.localAddress)}\n`);
      },
      data() {},
    },
  });
  return { stop: () => server.stop(true) };
}

export interface ProbeResult {
  target: string;
  ok: boolean;
  /** The source address the echo server saw. */
  seen?: string;
  /** The address the echo server answered on (a Service's backend). */
  by?: string;
  error?: string;
  /** The kernel's errno name when the connect failed with one (ENETUNREACH, ECONNREFUSED, ...). */
  errno?: string;
  ms: number;
}

/**
 * Errors the kernel gives at once, from the source's own state (no route, no address, a
 * local firewall): trying again or waiting longer cannot change them.
 */
export const DEFINITIVE_ERRNOS: ReadonlySet<string> = new Set(["ENETUNREACH", "ENETDOWN", "EADDRNOTAVAIL", "EPERM", "EACCES"]);

function splitHostPort(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(":");
  return { host: target.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(target.slice(i + 1)) };
}

function probeOnce(target: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  const { host, port } = splitHostPort(target);
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const finish = (r: Omit<ProbeResult, "target" | "ms">) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ target, ...r, ms: Math.round((performance.now() - started) * 10) / 10 });
    };
    const sock = connect({ host, port });
    sock.setTimeout(timeoutMs, () => finish({ ok: false, error: "timeout" }));
    sock.on("data", (d) => (buf += d.toString()));
    sock.on("end", () => {
      const [seen, by] = buf.trim().split(" ");
      finish(buf.includes("\n") ? { ok: true, seen, ...(by ? { by } : {}) } : { ok: false, error: "no answer" });
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      // Bun says ECONNREFUSED for every failed connect: the kernel is asked what it really said.
      void connectError(host, port).then((n) =>
        finish(n !== undefined ? { ok: false, error: describeErrno(n), errno: errnoName(n) } : { ok: false, error: e.code ?? e.message, ...(e.code ? { errno: e.code } : {}) }),
      );
    });
  });
}

/**
 * Connects to the targets, a few at a time: a burst of SYNs to many unresolved neighbours
 * overflows the ARP queue and turns into false timeouts. A refused connection is retried
 * until the deadline (the server may be starting); any other kernel error is final at once;
 * `lab check` retries timeouts itself.
 */
export async function probe(targets: string[], timeoutMs = 2000, parallel = 16): Promise<ProbeResult[]> {
  const out: ProbeResult[] = new Array(targets.length);
  let next = 0;
  const one = async (t: string): Promise<ProbeResult> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await probeOnce(t, timeoutMs);
      if (r.ok || r.errno !== "ECONNREFUSED" || Date.now() > deadline) return r;
      await Bun.sleep(50);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(parallel, targets.length) }, async () => {
      while (next < targets.length) {
        const i = next++;
        out[i] = await one(targets[i]!);
      }
    }),
  );
  return out;
}
