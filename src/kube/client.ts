// HTTP to the Kubernetes API server with Bun's fetch.
//
// Why not @kubernetes/client-node's HTTP layer: version 2.0.1 under Bun 1.4.5 rejects a
// server certificate signed by the cluster CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE, even with
// skip-verify set), while Bun's fetch given the same CA as `tls.ca` verifies it. Every
// cluster serves such a certificate, so that layer cannot be used here; turning
// verification off is not an option. The package still provides the API types (types.ts,
// type-only imports): what it cannot do at runtime, nothing of it is loaded for.
import { Backoff, retryAfterMs, sleep, type BackoffOpts } from "./backoff.ts";
import type { KubeConfig } from "./config.ts";
import { resourcePath, type PathOpts, type Resource } from "./resources.ts";
import { PATCH_CONTENT_TYPE, type KubeList, type KubeObject, type PatchType, type V1Status, type WatchEvent } from "./types.ts";

/** An answer of the API server other than 2xx; `status` and `reason` as in its Status object. */
export class KubeApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
    readonly body: V1Status | string | undefined,
  ) {
    const detail = typeof body === "object" && body?.message ? body.message : typeof body === "string" && body ? body.slice(0, 200) : reason;
    super(`cannot ${method} "${path}": ${status} ${reason}: ${detail}`);
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeApiError && e.status === 409;
export const isGone = (e: unknown): boolean => e instanceof KubeApiError && e.status === 410;

/** 429, 5xx (but 501) and no answer at all are worth another try; 4xx are final. */
function isRetriable(e: unknown): boolean {
  if (!(e instanceof KubeApiError)) return !(e instanceof DOMException && e.name === "AbortError");
  return e.status === 429 || (e.status >= 500 && e.status !== 501);
}

export interface ClientOpts {
  /** Attempts per request (1 = no retry). Watches are not retried here: the informer restarts them. */
  attempts?: number;
  backoff?: BackoffOpts;
  /** Per request, not for watches. */
  timeoutMs?: number;
  /** A watch whose answer (status and headers) has not come in this long is given up: an error (default 10 s). */
  watchHeaderTimeoutMs?: number;
  /** A watch on which nothing (no event, no bookmark) came in this long is ended, and the caller watches again (default 90 s). */
  watchIdleTimeoutMs?: number;
  userAgent?: string;
  /** Called before each retry (metrics, logs). */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; error: unknown }) => void;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOpts {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** Override of ClientOpts.attempts for this call. */
  attempts?: number;
}

export interface ListOpts {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  signal?: AbortSignal;
}

export interface WatchOpts {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  /**
   * Server-side end of the watch; the caller watches again from the last resourceVersion. The
   * client ends it too, a little later, should the server not (client-go's request timeout).
   */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Called once the server accepted the watch (200), before any event arrives. */
  onOpen?: () => void;
  /** Overrides of ClientOpts.watchHeaderTimeoutMs and watchIdleTimeoutMs for this watch. */
  headerTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Called when the client, not the server, ended the stream: nothing came for idleTimeoutMs, or timeoutSeconds passed. */
  onExpired?: (why: "idle" | "deadline") => void;
}

/** Past timeoutSeconds, how long the client still waits for the server to end a watch itself. */
const WATCH_DEADLINE_GRACE_MS = 5_000;

/** The watch's answer did not come within the header timeout (a hung connection or server). */
export class WatchHeaderTimeout extends Error {}

function queryString(q: Query | undefined): string {
  if (!q) return "";
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join("&")}` : "";
}

export class KubeClient {
  private readonly attempts: number;
  private readonly timeoutMs: number;

  constructor(
    readonly config: KubeConfig,
    private readonly opts: ClientOpts = {},
  ) {
    this.attempts = opts.attempts ?? 5;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private async send(method: string, path: string, o: RequestOpts, signal: AbortSignal | undefined): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": this.opts.userAgent ?? "mncni" };
    const token = this.config.token?.();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (o.body !== undefined) headers["Content-Type"] = o.contentType ?? "application/json";
    const tls: { ca?: string; cert?: string; key?: string } = {};
    if (this.config.ca) tls.ca = this.config.ca;
    if (this.config.cert && this.config.key) [tls.cert, tls.key] = [this.config.cert, this.config.key];
    return fetch(this.config.server + path + queryString(o.query), {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal,
      tls,
    });
  }

  private static async errorOf(method: string, path: string, res: Response): Promise<KubeApiError> {
    const text = await res.text().catch(() => "");
    let body: V1Status | string = text;
    try {
      body = JSON.parse(text) as V1Status;
    } catch {}
    const reason = typeof body === "object" && body.reason ? body.reason : res.statusText || "Error";
    return new KubeApiError(method, path, res.status, reason, body);
  }

  /** One API call with retries of disconnects, 429 (after Retry-After) and 5xx; the body parsed as JSON. */
  async request<T>(method: string, path: string, o: RequestOpts = {}): Promise<T> {
    const attempts = o.attempts ?? this.attempts;
    const backoff = new Backoff(this.opts.backoff);
    for (let attempt = 1; ; attempt++) {
      const signal = o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs);
      let error: unknown;
      let retryAfter: number | undefined;
      try {
        const res = await this.send(method, path, o, signal);
        if (res.ok) return (await res.json()) as T;
        retryAfter = retryAfterMs(res.headers.get("retry-after"));
        error = await KubeClient.errorOf(method, path, res);
      } catch (e) {
        error = e;
      }
      if (o.signal?.aborted || attempt >= attempts || !isRetriable(error)) throw wrapNetwork(method, path, error);
      const delayMs = Math.min(retryAfter ?? backoff.next(), this.opts.backoff?.maxMs ?? 30_000);
      this.opts.onRetry?.({ method, path, attempt, delayMs, error });
      await sleep(delayMs, o.signal);
    }
  }

  get<T extends KubeObject>(r: Resource, at: PathOpts & { name: string }, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", resourcePath(r, at), { signal });
  }

  /** One page. */
  list<T extends KubeObject>(r: Resource, o: ListOpts = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>("GET", resourcePath(r, { namespace: o.namespace }), {
      signal: o.signal,
      query: { labelSelector: o.labelSelector, fieldSelector: o.fieldSelector, limit: o.limit, continue: o.continue, resourceVersion: o.resourceVersion },
    });
  }

  /** Every page (limit/continue), as one list with the resourceVersion of the snapshot. */
  async listAll<T extends KubeObject>(r: Resource, o: Omit<ListOpts, "continue"> = {}): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      // Continuing pages carry the first page's snapshot in the token: no resourceVersion then.
      const page = await this.list<T>(r, { ...o, limit: o.limit ?? 500, continue: cont, resourceVersion: cont ? undefined : o.resourceVersion });
      for (const it of page.items ?? []) items.push(it);
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  /**
   * A watch stream: one event per JSON line of the chunked answer, bookmarks requested. Ends
   * when the server closes the stream; throws KubeApiError on a non-2xx answer (410 when the
   * resourceVersion is too old) and the network error when the connection drops.
   */
  async *watch<T extends KubeObject>(r: Resource, o: WatchOpts = {}): AsyncGenerator<WatchEvent<T>> {
    const path = resourcePath(r, { namespace: o.namespace });
    const query = {
      watch: 1,
      allowWatchBookmarks: true,
      resourceVersion: o.resourceVersion,
      labelSelector: o.labelSelector,
      fieldSelector: o.fieldSelector,
      timeoutSeconds: o.timeoutSeconds,
    };
    // Without these a hung connection (a request written into a socket the server no longer
    // serves, a stream that stops mid-way) leaves the caller's cache stale for good: no error, no event.
    const headerTimeoutMs = o.headerTimeoutMs ?? this.opts.watchHeaderTimeoutMs ?? 10_000;
    const idleTimeoutMs = o.idleTimeoutMs ?? this.opts.watchIdleTimeoutMs ?? 90_000;
    const gaveUp = new AbortController();
    const headerTimer = setTimeout(() => gaveUp.abort(new WatchHeaderTimeout(`cannot WATCH "${path}": no answer within ${headerTimeoutMs} ms`)), headerTimeoutMs);
    let res: Response;
    try {
      res = await this.send("GET", path, { query }, o.signal ? AbortSignal.any([o.signal, gaveUp.signal]) : gaveUp.signal);
    } catch (e) {
      if (gaveUp.signal.aborted && !o.signal?.aborted) throw gaveUp.signal.reason;
      throw wrapNetwork("GET", path, e);
    } finally {
      clearTimeout(headerTimer);
    }
    if (!res.ok) throw await KubeClient.errorOf("WATCH", path, res);
    o.onOpen?.();
    if (!res.body) return;
    const deadline = o.timeoutSeconds ? Date.now() + o.timeoutSeconds * 1000 + WATCH_DEADLINE_GRACE_MS : Infinity;
    const reader = res.body.getReader() as unknown as ChunkReader;
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const waitMs = Math.min(idleTimeoutMs, deadline - Date.now());
        const next = await readWithin(reader, waitMs);
        if (next === "timeout") {
          o.onExpired?.(Date.now() >= deadline ? "deadline" : "idle");
          return;
        }
        if (next.done) break;
        buf += decoder.decode(next.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as WatchEvent<T>;
        }
      }
    } catch (e) {
      throw wrapNetwork("WATCH", path, e);
    } finally {
      // Ended by us (timeout, the caller stopping early): the connection is closed, not left to hang.
      reader.cancel().catch(() => {});
    }
    if (buf.trim()) yield JSON.parse(buf) as WatchEvent<T>;
  }

  create<T extends KubeObject>(r: Resource, at: PathOpts, obj: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>("POST", resourcePath(r, { namespace: at.namespace }), { body: obj, signal });
  }

  /** PUT: with metadata.resourceVersion set, a stale object is refused with 409 Conflict (KubeApiError). */
  update<T extends KubeObject>(r: Resource, at: PathOpts & { name: string }, obj: T, signal?: AbortSignal): Promise<T> {
    return this.request<T>("PUT", resourcePath(r, at), { body: obj, signal });
  }

  patch<T extends KubeObject>(r: Resource, at: PathOpts & { name: string }, patch: unknown, type: PatchType = "strategic", signal?: AbortSignal): Promise<T> {
    return this.request<T>("PATCH", resourcePath(r, at), { body: patch, contentType: PATCH_CONTENT_TYPE[type], signal });
  }

  delete(r: Resource, at: PathOpts & { name: string }, signal?: AbortSignal): Promise<unknown> {
    return this.request("DELETE", resourcePath(r, at), { signal });
  }
}

/** Network failures named like API errors: `cannot GET "/api/v1/nodes": <cause>`. */
/** The next chunk, or "timeout" when none came within `ms`. */
interface ChunkReader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
  cancel(): Promise<void>;
}

async function readWithin(reader: ChunkReader, ms: number): Promise<Awaited<ReturnType<ChunkReader["read"]>> | "timeout"> {
  if (ms <= 0) return "timeout";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([reader.read(), new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function wrapNetwork(method: string, path: string, e: unknown): unknown {
  if (e instanceof KubeApiError || (e instanceof DOMException && e.name === "AbortError")) return e;
  const err = new Error(`cannot ${method} "${path}": ${(e as Error)?.message ?? String(e)}`, { cause: e });
  return err;
}
