// Request/response latency for the data-plane benchmark (bench/dataplane.ts): a TCP server
// that echoes every byte back, and a client that sends one request of N bytes at a time on
// one connection and times until the whole reply is back (netperf's TCP_RR). Both ends are
// the same code on every path measured, so the paths differ only by what the network adds.
import { withNetns } from "../kernel/netns.ts";

export function serveRr(o: { port: number; netns: string[] }): { stop(): void } {
  const listen = () =>
    Bun.listen({
      hostname: "0.0.0.0",
      port: o.port,
      socket: {
        open(sock) {
          sock.setNoDelay(true);
        },
        data(sock, d) {
          sock.write(d);
        },
      },
    });
  // The listening socket belongs to the namespace it was created in (created synchronously).
  const servers = o.netns.length ? o.netns.map((n) => withNetns(`/run/netns/${n}`, listen)) : [listen()];
  return { stop: () => servers.forEach((s) => s.stop(true)) };
}

export interface RrResult {
  target: string;
  count: number;
  size: number;
  /** Microseconds per round trip. */
  p50: number;
  p99: number;
  /** Round trips per second over the whole run. */
  rate: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** count round trips of size bytes to host:port after warmup ones (not timed). */
export function runRr(o: { host: string; port: number; count: number; size: number; warmup?: number }): Promise<RrResult> {
  const warmup = o.warmup ?? Math.min(200, o.count);
  const req = Buffer.alloc(o.size, 0x61);
  const times: number[] = [];
  return new Promise((resolve, reject) => {
    let got = 0;
    let sent = 0;
    let started = 0;
    let begin = 0;
    const send = (s: { write(b: Buffer): number }) => {
      got = 0;
      started = Bun.nanoseconds();
      sent++;
      s.write(req);
    };
    Bun.connect({
      hostname: o.host,
      port: o.port,
      socket: {
        open(s) {
          s.setNoDelay(true);
          send(s);
        },
        data(s, d) {
          got += d.length;
          if (got < o.size) return;
          const us = (Bun.nanoseconds() - started) / 1000;
          if (sent === warmup) begin = Bun.nanoseconds();
          if (sent > warmup) times.push(us);
          if (times.length >= o.count) {
            s.end();
            const total = (Bun.nanoseconds() - begin) / 1e9;
            times.sort((a, b) => a - b);
            const r = (x: number) => Math.round(x * 10) / 10;
            resolve({ target: `${o.host}:${o.port}`, count: o.count, size: o.size, p50: r(pct(times, 50)), p99: r(pct(times, 99)), rate: Math.round(o.count / total) });
            return;
          }
          send(s);
        },
        error(_s, e) {
          reject(e);
        },
        connectError(_s, e) {
          reject(e);
        },
      },
    }).catch(reject);
  });
}
