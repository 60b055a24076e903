// Deletes links off the server's main thread (see reaper-worker.ts): a served DEL unplugs
// the pod at once and answers when its veth is gone, while the next calls go on.
import { isCompiled } from "../sys/self.ts";
import type { ReapReply, ReapRequest } from "./reaper-worker.ts";

const WORKERS = 8;

/**
 * The worker's entry point: next to this file when run from source; in the executable, the
 * second entry point of the build (Makefile), kept under its path relative to src/.
 */
function workerUrl(): string {
  return isCompiled() ? `${Bun.main.slice(0, Bun.main.lastIndexOf("/"))}/serve/reaper-worker.js` : new URL("./reaper-worker.ts", import.meta.url).href;
}

export class LinkReaper {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private next = 0;
  private ids = 0;

  /** Resolves when the link is gone; by index, so a new link of the same name is safe. */
  delete(index: number): Promise<void> {
    const id = ++this.ids;
    const w = this.worker();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, index } satisfies ReapRequest);
    });
  }

  close(): void {
    for (const w of this.workers.splice(0)) w.terminate();
    for (const [, p] of this.waiting) p.reject(new Error("link reaper stopped"));
    this.waiting.clear();
  }

  private worker(): Worker {
    if (this.workers.length < WORKERS) {
      // smol: a smaller heap per worker thread; each only deletes links.
      const w = new Worker(workerUrl(), { smol: true });
      w.onmessage = (e: MessageEvent<ReapReply>) => {
        const p = this.waiting.get(e.data.id);
        this.waiting.delete(e.data.id);
        if (e.data.error) p?.reject(new Error(e.data.error));
        else p?.resolve();
      };
      // A worker that cannot start (or dies) fails its pending deletions instead of hanging them.
      w.onerror = (e) => {
        for (const [, p] of this.waiting) p.reject(new Error(`link reaper: ${e.message}`));
        this.waiting.clear();
        this.workers.splice(this.workers.indexOf(w), 1);
      };
      w.unref();
      this.workers.push(w);
      return w;
    }
    return this.workers[this.next++ % this.workers.length]!;
  }
}
