// A TCP and UDP echo pair for Service traffic, run inside a namespace (ip netns exec):
//   bun svc-echo.ts serve ID PORT...          answers every TCP connection and UDP datagram
//                                              on each PORT with "ID SOURCE" (who answered,
//                                              and the source address it saw)
//   bun svc-echo.ts probe tcp|udp HOST:PORT N  N connections (TCP) or datagrams from N fresh
//                                              sockets (UDP), one JSON line of results
//   bun svc-echo.ts connect HOST:PORT N        N TCP connections one after another, one JSON
//                                              line: each one's connect time in microseconds
//                                              (SYN to established: the first packet's trip)
//   bun svc-echo.ts client                     the same for each stdin line "HOST:PORT N", one
//                                              JSON line each (no process start per batch)
// Each probe is its own socket, so each is a new conntrack entry and a new backend choice.
import { connect } from "node:net";

/** The address serve listens on: ECHO_HOST=:: serves IPv6 too (IPv4 clients then show as plain IPv4). */
const HOST = process.env.ECHO_HOST ?? "0.0.0.0";

export interface EchoAnswer {
  ok: boolean;
  /** The backend's ID. */
  id?: string;
  /** The source address the backend saw. */
  seen?: string;
  error?: string;
}

const plain = (a: string | undefined) => (a ?? "").replace(/^::ffff:/, "");
const parse = (s: string): EchoAnswer => {
  const [id, seen] = s.trim().split(" ");
  return id && seen ? { ok: true, id, seen } : { ok: false, error: `unexpected answer "${s.trim()}"` };
};

async function serve(id: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    Bun.listen({
      hostname: HOST,
      port,
      socket: {
        open(sock) {
          sock.end(`${id} ${plain(sock.remoteAddress)}\n`);
        },
        data() {},
      },
    });
    await Bun.udpSocket({
      hostname: HOST,
      port,
      socket: {
        data(sock, _buf, rport, raddr) {
          sock.send(`${id} ${plain(raddr)}\n`, rport, raddr);
        },
      },
    });
  }
  console.log("ready");
  await new Promise<void>((res) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => res());
  });
  process.exit(0);
}

function tcpOnce(host: string, port: number, timeoutMs: number): Promise<EchoAnswer> {
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const finish = (a: EchoAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(a);
    };
    const sock = connect({ host, port });
    const timer = setTimeout(() => finish({ ok: false, error: "timeout" }), timeoutMs);
    sock.on("data", (d) => (buf += d.toString()));
    sock.on("end", () => finish(parse(buf)));
    sock.on("error", (e) => finish({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

async function udpOnce(host: string, port: number, timeoutMs: number): Promise<EchoAnswer> {
  let resolve!: (a: EchoAnswer) => void;
  const answer = new Promise<EchoAnswer>((r) => (resolve = r));
  const sock = await Bun.udpSocket({
    // Unbound, Bun's UDP socket is IPv4 only.
    ...(host.includes(":") ? { hostname: "::" } : {}),
    socket: {
      data(_s, buf) {
        resolve(parse(buf.toString()));
      },
    },
  });
  sock.send("?", port, host);
  const timer = setTimeout(() => resolve({ ok: false, error: "timeout" }), timeoutMs);
  const a = await answer;
  clearTimeout(timer);
  sock.close();
  return a;
}

async function probe(proto: string, target: string, n: number): Promise<void> {
  const i = target.lastIndexOf(":");
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  const out: EchoAnswer[] = [];
  for (let k = 0; k < n; k++) out.push(await (proto === "udp" ? udpOnce(host, port, 2000) : tcpOnce(host, port, 3000)));
  console.log(JSON.stringify(out));
}

/** Connect times, µs; a failed connect throws (a benchmark must not average failures in). */
async function connectTimes(target: string, n: number): Promise<void> {
  console.log(JSON.stringify(await timeConnects(target, n)));
}

async function client(): Promise<void> {
  for await (const line of console) {
    const [target, n] = line.trim().split(" ");
    if (!target) continue;
    try {
      console.log(JSON.stringify(await timeConnects(target, Number(n ?? "1"))));
    } catch (e) {
      console.log(JSON.stringify({ error: (e as Error).message }));
    }
  }
}

async function timeConnects(target: string, n: number): Promise<number[]> {
  const i = target.lastIndexOf(":");
  const host = target.slice(0, i);
  const port = Number(target.slice(i + 1));
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    out.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const sock = connect({ host, port });
        const timer = setTimeout(() => (sock.destroy(), reject(new Error(`connect to ${target}: timeout`))), 3000);
        sock.on("connect", () => {
          const us = Number(process.hrtime.bigint() - t0) / 1000;
          clearTimeout(timer);
          sock.destroy();
          resolve(us);
        });
        sock.on("error", (e) => (clearTimeout(timer), reject(e)));
      }),
    );
  }
  return out;
}

if (import.meta.main) {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === "serve") await serve(rest[0]!, rest.slice(1).map(Number));
  else if (cmd === "probe") await probe(rest[0]!, rest[1]!, Number(rest[2] ?? "1"));
  else if (cmd === "connect") await connectTimes(rest[0]!, Number(rest[1] ?? "1"));
  else if (cmd === "client") await client();
  else {
    console.error("usage: svc-echo.ts serve ID PORT... | probe tcp|udp HOST:PORT [N] | connect HOST:PORT [N] | client");
    process.exit(2);
  }
}
