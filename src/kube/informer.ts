// List + watch of one resource into a cache keyed by namespace/name, with add/update/delete
// handlers: what client-go's reflector + informer do. The first list sets `synced`; the watch
// resumes from the last resourceVersion seen (bookmarks keep it fresh); 410 Gone relists and
// hands the difference to the handlers; a dropped stream reconnects after a backoff; the
// handlers hear when the list/watch starts failing and when it succeeds again (a cache that
// can no longer be vouched for, and one that can again, with no object changed); a
// resource the server does not have (404, e.g. a CRD not installed) is reported once and
// looked for again with backoff from a second up to missingRetryMs (a CRD being installed or
// served again is picked up in seconds, one never installed costs a request a minute).
import { Backoff, sleep, type BackoffOpts } from "./backoff.ts";
import { isGone, isNotFound, KubeApiError, type KubeClient } from "./client.ts";
import type { Resource } from "./resources.ts";
import { objectKey, type KubeObject } from "./types.ts";

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(old: T, obj: T): void;
  delete?(obj: T): void;
  /** After the initial list (and after every relist) has been applied. */
  synced?(): void;
  /**
   * The list or watch started failing (lastError set): the cache may be falling behind. Once
   * per outage, not for every retry (client-go's watch error handler, which it calls each time).
   */
  failing?(error: unknown): void;
  /** A list, watch or event came after a failure (lastError cleared): the cache is current again, or being brought up to date. */
  recovered?(): void;
}

/** Why a watch was started again. */
/** idle: the client ended a watch on which nothing came for its idle timeout (a hung connection, or a quiet one). */
export type RestartReason = "closed" | "expired" | "error" | "missing" | "idle";

/** What an informer reports; KubeMetrics implements it. */
export interface InformerMetrics {
  watchRestart(kind: string, reason: RestartReason): void;
  listed(kind: string, atSeconds: number): void;
  objects(kind: string, count: number): void;
  /** The resource does not exist on the server (true) or appeared again (false). */
  missing(kind: string, missing: boolean): void;
}

export interface InformerLog {
  warn(msg: string, f?: Record<string, unknown>): void;
  info(msg: string, f?: Record<string, unknown>): void;
}

export interface InformerOpts<T> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Applied to every object before it is stored (trim Pods to the fields used). */
  transform?: (obj: T) => T;
  pageSize?: number;
  /** Server-side watch timeout; the watch is then resumed from the last resourceVersion. */
  watchTimeoutSeconds?: number;
  backoff?: BackoffOpts;
  /** A watch ended by the server sooner than this with no event on it is watched again after the backoff (default 1 s, client-go's "very short watch"). */
  shortWatchMs?: number;
  /** The longest wait before a missing resource (404) is looked for again (backoff from 1 s up to it). */
  missingRetryMs?: number;
  metrics?: InformerMetrics;
  log?: InformerLog;
}

/** A watch that ends sooner than this with no event on it is a "very short watch" (client-go's bound). */
const SHORT_WATCH_MS = 1000;

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly missingBackoff: Backoff;
  private running?: Promise<void>;
  private rv = "";
  /** Watch events (bookmarks included) received so far: whether a watch brought anything. */
  private events = 0;
  private reportedMissing = false;
  private syncWaiters: (() => void)[] = [];
  /** True once the first list has been applied. */
  synced = false;
  private error?: unknown;

  /** The last error of the list/watch loop, cleared by the next success (readiness, logs). */
  get lastError(): unknown {
    return this.error;
  }

  constructor(
    private readonly client: KubeClient,
    readonly resource: Resource,
    private readonly opts: InformerOpts<T> = {},
  ) {
    this.backoff = new Backoff({ initialMs: 500, maxMs: 30_000, ...opts.backoff });
    this.missingBackoff = new Backoff({ initialMs: Math.min(1000, this.missingRetryMs), maxMs: this.missingRetryMs, jitter: 0.2 });
  }

  on(h: InformerHandlers<T>): this {
    this.handlers.push(h);
    return this;
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  /** The resourceVersion the watch resumes from. */
  get resourceVersion(): string {
    return this.rv;
  }

  start(): this {
    this.running ??= this.loop();
    return this;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /** Resolves after the initial list (or when stopped). */
  waitForSync(): Promise<void> {
    if (this.synced || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private get kind(): string {
    return this.resource.kind;
  }

  private emit<K extends keyof InformerHandlers<T>>(k: K, ...args: Parameters<NonNullable<InformerHandlers<T>[K]>>): void {
    for (const h of this.handlers) {
      const f = h[k] as ((...a: unknown[]) => void) | undefined;
      if (!f) continue;
      try {
        f.apply(h, args);
      } catch (e) {
        // A handler's bug must not stop the watch of everyone else.
        this.opts.log?.warn(`${this.kind} ${String(k)} handler failed: ${(e as Error).message}`);
      }
    }
  }

  private prepare(obj: T): T {
    return this.opts.transform ? this.opts.transform(obj) : obj;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const opened = Date.now();
        const events = this.events;
        const ended = await this.watchOnce();
        // Expired (410): list again. Closed by the server, or ended by the client (idle, its
        // deadline): watch again from the last resourceVersion; the server replays what was
        // missed since, or answers 410 and the next round lists.
        if (ended === "expired") needList = true;
        this.opts.metrics?.watchRestart(this.kind, ended);
        // Closed at once with nothing on it (a server shutting down, a proxy refusing the
        // stream): client-go's "very short watch". Watched again after the backoff, not at once:
        // otherwise every client asks again in a loop for as long as it lasts. Not an error (the
        // cache is as current as the last event): the node stays ready.
        const ms = Date.now() - opened;
        if (ended === "closed" && this.events === events && ms < (this.opts.shortWatchMs ?? SHORT_WATCH_MS)) {
          const delay = this.backoff.next();
          this.opts.log?.info(`${this.kind}: watch closed at once (${ms} ms, nothing on it); watching again in ${Math.round(delay)} ms`);
          await sleep(delay, signal);
        }
      } catch (e) {
        if (signal.aborted) break;
        if (isGone(e)) {
          // The resourceVersion (or a continue token) is too old: list again, now. Not a
          // failure (the cache is not falling behind for it): handlers are not told.
          needList = true;
          this.opts.metrics?.watchRestart(this.kind, "expired");
          continue;
        }
        this.failed(e);
        if (isNotFound(e)) {
          // Gone from the server (a CRD removed) while watched, or never there: the same slow path.
          needList = true;
          if (!this.reportedMissing) this.opts.log?.warn(`${this.kind}: resource ${this.resource.group || "core"}/${this.resource.version}/${this.resource.plural} is not served (404); looking again with backoff, at least every ${Math.round(this.missingRetryMs / 1000)} s`);
          this.reportedMissing = true;
          this.opts.metrics?.missing(this.kind, true);
          this.opts.metrics?.watchRestart(this.kind, "missing");
          await sleep(this.missingBackoff.next(), signal);
          continue;
        }
        const delay = this.backoff.next();
        this.opts.log?.warn(`${this.kind}: ${needList ? "list" : "watch"} failed, retrying in ${Math.round(delay)} ms: ${(e as Error).message}`);
        this.opts.metrics?.watchRestart(this.kind, "error");
        await sleep(delay, signal);
      }
    }
    this.releaseWaiters();
  }

  private get missingRetryMs(): number {
    return this.opts.missingRetryMs ?? 60_000;
  }

  /** The loop failed: handlers hear of it when it is the first failure since a success. */
  private failed(e: unknown): void {
    const first = this.error === undefined;
    this.error = e;
    if (first) this.emit("failing", e);
  }

  /** The loop succeeded: handlers hear of it when it had been failing. */
  private succeeded(): void {
    if (this.error === undefined) return;
    this.error = undefined;
    this.emit("recovered");
  }

  private releaseWaiters(): void {
    const w = this.syncWaiters;
    this.syncWaiters = [];
    for (const f of w) f();
  }

  /** Lists every page and applies the difference to the cache (and handlers). */
  private async relist(): Promise<void> {
    const o = this.opts;
    const { items, resourceVersion } = await this.client.listAll<T>(this.resource, {
      namespace: o.namespace,
      labelSelector: o.labelSelector,
      fieldSelector: o.fieldSelector,
      limit: o.pageSize ?? 500,
      signal: this.abort.signal,
    });
    if (this.reportedMissing) {
      this.opts.log?.info(`${this.kind}: resource is served again`);
      this.reportedMissing = false;
      this.opts.metrics?.missing(this.kind, false);
    }
    const seen = new Set<string>();
    for (const raw of items) {
      const obj = this.prepare(raw);
      const key = objectKey(obj);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit("delete", old);
      }
    }
    this.rv = resourceVersion;
    this.succeeded();
    this.backoff.reset();
    this.missingBackoff.reset();
    this.opts.metrics?.objects(this.kind, this.store.size);
    this.opts.metrics?.listed(this.kind, Date.now() / 1000);
    this.synced = true;
    this.emit("synced");
    this.releaseWaiters();
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) this.emit("add", obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit("update", old, obj);
  }

  /** Watches until the stream ends; why it ended: the resourceVersion expired, the server closed it, or the client gave up on a silent one. */
  private async watchOnce(): Promise<"expired" | "closed" | "idle"> {
    const o = this.opts;
    let ended: "closed" | "idle" = "closed";
    const events = this.client.watch<T>(this.resource, {
      namespace: o.namespace,
      labelSelector: o.labelSelector,
      fieldSelector: o.fieldSelector,
      resourceVersion: this.rv,
      // client-go picks 5-10 minutes at random so watches of many clients do not end together.
      timeoutSeconds: o.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300),
      signal: this.abort.signal,
      // A watch resumed after an outage replays what it missed: the cache is current again
      // from here, even when nothing changed (no event would clear the error otherwise).
      onOpen: () => this.succeeded(),
      // Its deadline passed (the server should have ended it): as if the server had.
      onExpired: (why) => {
        if (why === "idle") ended = "idle";
      },
    });
    for await (const ev of events) {
      this.events++;
      if (ev.type === "ERROR") {
        if (ev.object.code === 410) return "expired";
        throw new KubeApiError("WATCH", this.resource.plural, ev.object.code ?? 500, ev.object.reason ?? "Error", ev.object);
      }
      const rv = ev.object.metadata?.resourceVersion;
      if (ev.type !== "BOOKMARK") {
        const obj = this.prepare(ev.object);
        const key = objectKey(obj);
        if (ev.type === "DELETED") {
          const old = this.store.get(key);
          this.store.delete(key);
          this.emit("delete", old ?? obj);
        } else {
          this.upsert(key, obj);
        }
        this.opts.metrics?.objects(this.kind, this.store.size);
      }
      if (rv) this.rv = rv;
      this.succeeded();
      this.backoff.reset();
    }
    return ended;
  }
}
