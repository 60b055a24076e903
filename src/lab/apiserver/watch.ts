// A watch stream: newline-delimited JSON events, ADDED for the current objects (no
// resourceVersion) or the logged changes after the one given (older than the log: one
// ERROR event with a 410 Status, as kube-apiserver sends), then live changes; an object
// leaving or entering a filtered watch's selection is DELETED or ADDED for it; bookmarks
// with allowWatchBookmarks.
import { apiVersionOf, type Kind, type Obj } from "./kinds.ts";
import type { Change, EventType, Store } from "./store.ts";
import { status } from "./status.ts";

export interface WatchOptions {
  kind: Kind;
  match: (o: Obj) => boolean;
  from?: number;
  bookmarks: boolean;
  bookmarkIntervalMs: number;
  timeoutSeconds: number;
  /** How an object goes on the wire (the object itself, or a one-row Table). */
  render: (o: Obj, first: boolean) => Obj;
}

const enc = new TextEncoder();

interface Open {
  plural: string;
  end: () => void;
  bookmark: () => void;
}

export class Watches {
  private readonly open = new Set<Open>();

  constructor(private readonly store: Store) {}

  get count(): number {
    return this.open.size;
  }

  /** Ends every open watch stream, or those of one kind (clients see the stream end and watch again); how many. */
  endAll(plural?: string): number {
    const ending = [...this.open].filter((w) => plural === undefined || w.plural === plural);
    for (const w of ending) w.end();
    return ending.length;
  }

  /** A bookmark now on every open watch that asked for bookmarks. */
  bookmarkAll(): void {
    for (const w of this.open) w.bookmark();
  }

  response(o: WatchOptions): Response {
    let end = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start: (ctrl) => {
        let first = true;
        const send = (type: EventType | "BOOKMARK" | "ERROR", object: Obj, raw = false) => {
          try {
            ctrl.enqueue(enc.encode(JSON.stringify({ type, object: raw ? object : o.render(object, first) }) + "\n"));
            if (!raw) first = false;
          } catch {
            end();
          }
        };
        const backlog = o.from === undefined ? undefined : this.store.since(o.from);
        if (o.from !== undefined && !backlog) {
          send("ERROR", status(410, "Expired", `too old resource version: ${o.from} (${this.store.oldestResumable})`), true);
          ctrl.close();
          return;
        }
        const deliver = (c: Change) => {
          if (c.plural !== o.kind.plural) return;
          const now = o.match(c.obj);
          const before = c.type === "MODIFIED" ? !!c.old && o.match(c.old) : now;
          if (c.type === "MODIFIED" && before !== now) send(now ? "ADDED" : "DELETED", c.obj);
          else if (now) send(c.type, c.obj);
        };
        // The real server flushes the 200 and its headers at once; Bun sends nothing of a
        // response before its first byte: one newline, which JSON stream decoders skip.
        ctrl.enqueue(enc.encode("\n"));
        if (backlog) backlog.forEach(deliver);
        else for (const obj of this.store.list(o.kind.plural)) if (o.match(obj)) send("ADDED", obj);
        const unsubscribe = this.store.subscribe(deliver);
        const bookmark = () => send("BOOKMARK", { kind: o.kind.kind, apiVersion: apiVersionOf(o.kind), metadata: { resourceVersion: String(this.store.resourceVersion) } }, true);
        const timer = o.bookmarks ? setInterval(bookmark, o.bookmarkIntervalMs) : undefined;
        const timeout = o.timeoutSeconds > 0 ? setTimeout(() => end(), o.timeoutSeconds * 1000) : undefined;
        const self: Open = { plural: o.kind.plural, end: () => end(), bookmark: () => o.bookmarks && bookmark() };
        end = () => {
          if (!this.open.delete(self)) return;
          unsubscribe();
          clearInterval(timer);
          clearTimeout(timeout);
          try {
            ctrl.close();
          } catch {}
        };
        this.open.add(self);
      },
      cancel: () => end(),
    });
    return new Response(stream, { status: 200, headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } });
  }
}
