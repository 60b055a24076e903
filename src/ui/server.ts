// The page's server: the page itself (src/ui/page/, bundled by Bun into the executable), its
// state and flow rows as JSON, explain on request, and flow rows and state changes pushed over Server-Sent
// Events. It listens on 127.0.0.1 unless told otherwise; on any other address every /api/
// request must carry the token. On loopback a request must name the server's own address in
// its Host header (a page of another site cannot rebind a name to 127.0.0.1 and read it).
import page from "./page/index.html";
import { FlowRows } from "./flow-rows.ts";
import type { UiEvent, UiExplainAnswer, UiExplainRequest, UiFlowRow, UiSnapshot } from "./model.ts";
import type { UiSource } from "./source.ts";

export interface UiServerOptions {
  source: UiSource;
  hostname: string;
  /** 0: any free port (the URL says which). */
  port: number;
  /** Required on every /api/ request when set (?token= or Authorization: Bearer). */
  token?: string;
  /** How often the topology and policies are read again while a page is open. */
  stateEveryMs?: number;
}

export interface UiServer {
  /** The address to open (with ?token= when there is one). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

export const isLoopback = (host: string) => host === "127.0.0.1" || host === "::1" || host === "localhost" || host.startsWith("127.");

const PROTOS = new Set(["tcp", "udp", "icmp"]);

/** The request's fields checked one by one; an error names the first that is wrong. */
function explainRequest(body: unknown): UiExplainRequest | string {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.src !== "string" || !b.src) return "src: must be a pod, node or address";
  if (typeof b.dst !== "string" || !b.dst) return "dst: must be a pod, node or address";
  if (typeof b.proto !== "string" || !PROTOS.has(b.proto)) return "proto: must be tcp, udp or icmp";
  const port = b.port === undefined ? 7777 : b.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) return "port: must be an integer from 1 to 65535";
  return { src: b.src, dst: b.dst, proto: b.proto as UiExplainRequest["proto"], port, probe: b.probe === true };
}

export async function startUiServer(o: UiServerOptions): Promise<UiServer> {
  const rows = new FlowRows();
  const clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const enc = new TextEncoder();
  let state: UiSnapshot | undefined;
  let stateJson = "";
  let stateAt = 0;
  let pending = new Map<string, UiFlowRow>();
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  const send = (e: UiEvent) => {
    const chunk = enc.encode(`data: ${JSON.stringify(e)}\n\n`);
    for (const c of clients) {
      try {
        c.enqueue(chunk);
      } catch {
        clients.delete(c);
      }
    }
  };

  // Rows changed within a few milliseconds go out as one event.
  const flush = () => {
    flushTimer = undefined;
    if (!pending.size) return;
    const changed = [...pending.values()];
    pending = new Map();
    send({ type: "flows", rows: changed });
  };
  const stopFlows = o.source.followFlows((records) => {
    for (const r of rows.add(records)) pending.set(r.key, r);
    if (pending.size && !flushTimer && clients.size) flushTimer = setTimeout(flush, 20);
    if (!clients.size) pending.clear();
  });

  let refreshing: Promise<void> | undefined;
  const refresh = () =>
    (refreshing ??= (async () => {
      try {
        const next = await o.source.state();
        const json = JSON.stringify(next);
        stateAt = Date.now();
        if (json !== stateJson) {
          state = next;
          stateJson = json;
          send({ type: "state", state: next });
        }
      } finally {
        refreshing = undefined;
      }
    })());
  await refresh();
  const poll = setInterval(() => {
    if (clients.size) refresh().catch(() => {});
  }, o.stateEveryMs ?? 5000);

  const allowedHosts = (port: number) => new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${o.hostname}:${port}`]);
  let hosts = new Set<string>();
  const refused = (req: Request): Response | undefined => {
    const url = new URL(req.url);
    if (o.token) {
      const given = url.searchParams.get("token") ?? req.headers.get("authorization")?.replace(/^Bearer /, "");
      if (given !== o.token) return new Response("a token is required: open the address `mncni ui` printed\n", { status: 401 });
    } else if (!hosts.has(req.headers.get("host") ?? "")) {
      return new Response("this server answers only requests addressed to its own loopback address\n", { status: 403 });
    }
    return undefined;
  };
  const guarded = (fn: (req: Request) => Response | Promise<Response>) => (req: Request) => refused(req) ?? fn(req);

  const server = Bun.serve({
    hostname: o.hostname,
    port: o.port,
    development: false,
    // Server-Sent Events stay open: no idle timeout (a comment line every 15 s keeps proxies open).
    idleTimeout: 0,
    routes: {
      "/": page,
      "/api/state": guarded(async () => {
        // A page loads with what is known now; a newer state follows on its event stream.
        if (Date.now() - stateAt > 2000) refresh().catch(() => {});
        return Response.json(state! satisfies UiSnapshot, { headers: { "cache-control": "no-store" } });
      }),
      "/api/flows": guarded(() => Response.json(rows.all() satisfies UiFlowRow[], { headers: { "cache-control": "no-store" } })),
      "/api/events": guarded((req) => {
        let ctl: ReadableStreamDefaultController<Uint8Array>;
        const stream = new ReadableStream<Uint8Array>({
          start(c) {
            ctl = c;
            clients.add(c);
            c.enqueue(enc.encode("retry: 1000\n\n"));
          },
          cancel() {
            clients.delete(ctl);
          },
        });
        req.signal.addEventListener("abort", () => clients.delete(ctl));
        return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" } });
      }),
      "/api/explain": {
        POST: guarded(async (req) => {
          const r = explainRequest(await req.json().catch(() => undefined));
          if (typeof r === "string") return Response.json({ error: r } satisfies UiExplainAnswer, { status: 400 });
          try {
            return Response.json({ explanation: await o.source.explain(r) } satisfies UiExplainAnswer);
          } catch (e) {
            return Response.json({ error: (e as Error).message } satisfies UiExplainAnswer, { status: 422 });
          }
        }),
      },
    },
    fetch: () => new Response("not found\n", { status: 404 }),
  });
  hosts = allowedHosts(server.port!);
  const keepAlive = setInterval(() => {
    const c = enc.encode(": keep-alive\n\n");
    for (const x of clients) {
      try {
        x.enqueue(c);
      } catch {
        clients.delete(x);
      }
    }
  }, 15_000);

  const shownHost = o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname;
  return {
    url: `http://${shownHost}:${server.port}/${o.token ? `?token=${encodeURIComponent(o.token)}` : ""}`,
    port: server.port!,
    async stop() {
      clearInterval(poll);
      clearInterval(keepAlive);
      if (flushTimer) clearTimeout(flushTimer);
      stopFlows();
      for (const c of clients) {
        try {
          c.close();
        } catch {
          // already closed by the page
        }
      }
      clients.clear();
      await server.stop(true);
      o.source.close?.();
    },
  };
}
