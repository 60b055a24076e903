// Cluster state from a directory of Kubernetes manifests (the lab, hosts without Kubernetes).
// The source keeps a cache, as an informer would: start() fills it, then fs.watch events and a
// periodic re-list keep it current, and snapshot() only hands it out. Files are re-parsed only
// when their size or mtime changed, so a re-list of a large, mostly unchanged directory costs a
// readdir and a stat per file. Dotfiles and files with other extensions are skipped: writers
// create `.name.tmp` and rename it into place.
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { parseManifests, type ParsedManifests } from "./manifests.ts";
import { buildClusterState } from "./build-state.ts";
import type { ClusterSource, ClusterState, SourceSnapshot } from "./types.ts";

const MANIFEST = /^[^.].*\.(ya?ml|json)$/;

interface CachedFile {
  key: string;
  parsed: ParsedManifests;
}

export interface ManifestsDirOptions {
  /** Quiet period after the last change event before the cache is re-read. */
  debounceMs?: number;
  /** Re-list period once watching (events can be missed, the directory replaced). */
  relistMs?: number;
}

export class ManifestsDirSource implements ClusterSource {
  readonly description: string;
  private cache = new Map<string, CachedFile>();
  private signature = "";
  private state: ClusterState = buildClusterState([]);
  private stale?: string;
  private watcher?: FSWatcher;
  /** The directory inode the watcher follows: a directory replaced by another needs a new watcher. */
  private watchedIno?: number;
  private onChange?: () => void;
  private timer?: ReturnType<typeof setTimeout>;
  private relist?: ReturnType<typeof setInterval>;

  constructor(readonly dir: string, private readonly opts: ManifestsDirOptions = {}) {
    this.description = `dir:${dir}`;
  }

  async start(): Promise<void> {
    this.rescan();
    // Nothing read is not an empty cluster: refuse rather than remove every route.
    if (this.stale) throw new Error(this.stale);
  }

  snapshot(): SourceSnapshot {
    return this.stale ? { state: this.state, stale: this.stale } : { state: this.state };
  }

  /**
   * Re-reads the directory into the cache; returns whether the snapshot changed. An unreadable
   * directory or file keeps what was last read from it, and marks the snapshot stale.
   */
  rescan(): boolean {
    const before = this.stale;
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => MANIFEST.test(n)).sort();
    } catch (e) {
      this.stale = `cannot read manifests directory "${this.dir}": ${(e as Error).message}`;
      return this.stale !== before;
    }
    const problems: string[] = [];
    const next = new Map<string, CachedFile>();
    for (const name of names) next.set(name, this.load(join(this.dir, name), this.cache.get(name), problems));
    this.cache = next;
    this.stale = problems.length ? problems.join("; ") : undefined;
    const signature = [...next].map(([n, f]) => `${n}\0${f.key}`).join("\n");
    if (signature === this.signature) return this.stale !== before;
    this.signature = signature;
    const files = [...next.values()];
    this.state = buildClusterState(files.flatMap((f) => f.parsed.objects), files.flatMap((f) => f.parsed.invalid));
    return true;
  }

  private load(path: string, cached: CachedFile | undefined, problems: string[]): CachedFile {
    try {
      const st = statSync(path);
      if (!st.isFile()) return { key: "not a file", parsed: { objects: [], invalid: [] } };
      const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (cached?.key === key) return cached;
      return { key, parsed: parseManifests(readFileSync(path, "utf8"), path) };
    } catch (e) {
      // Removed between readdir and read: it will be gone from the next listing.
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { key: "gone", parsed: { objects: [], invalid: [] } };
      // Unreadable: its objects are not gone from the cluster; keep the last read of it.
      problems.push(`cannot read manifest "${path}": ${(e as Error).message}`);
      return cached ?? { key: "unreadable", parsed: { objects: [], invalid: [] } };
    }
  }

  watch(onChange: () => void): void {
    this.onChange = onChange;
    this.follow();
    this.relist = setInterval(() => this.update(), this.opts.relistMs ?? 10_000);
  }

  /** Re-reads and tells the watcher when the snapshot changed. */
  private update(): void {
    this.follow();
    if (this.rescan()) this.onChange?.();
  }

  /** (Re)starts fs.watch on the directory, when it exists and is not the one already watched. */
  private follow(): void {
    let ino: number;
    try {
      ino = statSync(this.dir).ino;
    } catch {
      // Gone for now: the re-list reports it (stale) and calls here again.
      return;
    }
    if (this.watcher && ino === this.watchedIno) return;
    this.watcher?.close();
    this.watchedIno = ino;
    const debounce = this.opts.debounceMs ?? 50;
    this.watcher = watch(this.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.update(), debounce);
    });
    // A watcher error (directory removed) must not kill the agent: the re-list still runs.
    this.watcher.on("error", () => {
      this.watcher?.close();
      this.watcher = undefined;
    });
  }

  close(): void {
    clearTimeout(this.timer);
    clearInterval(this.relist);
    this.watcher?.close();
    this.watcher = undefined;
    this.onChange = undefined;
  }
}
