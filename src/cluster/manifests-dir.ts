// Cluster state from a directory of Kubernetes manifests (the lab, hosts without Kubernetes).
// Files are re-parsed only when their size or mtime changed, so a full resync of a large,
// mostly unchanged directory costs a readdir and a stat per file. Dotfiles and files with
// other extensions are skipped: writers create `.name.tmp` and rename it into place.
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { parseManifests, type ParsedManifests } from "./manifests.ts";
import { buildClusterState } from "./state.ts";
import type { ClusterSource, ClusterState } from "./types.ts";

const MANIFEST = /^[^.].*\.(ya?ml|json)$/;

interface CachedFile {
  key: string;
  parsed: ParsedManifests;
}

export interface ManifestsDirOptions {
  /** Quiet period after the last change event before onChange runs. */
  debounceMs?: number;
}

export class ManifestsDirSource implements ClusterSource {
  readonly description: string;
  private cache = new Map<string, CachedFile>();
  private state: ClusterState = buildClusterState([]);
  private watcher?: FSWatcher;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(readonly dir: string, private readonly opts: ManifestsDirOptions = {}) {
    this.description = `dir:${dir}`;
  }

  refresh(): ClusterState {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => MANIFEST.test(n)).sort();
    } catch (e) {
      // An unreadable directory is not "no nodes": keep the last state and say why.
      this.state = { ...this.state, invalid: [{ file: this.dir, error: `cannot read manifests directory "${this.dir}": ${(e as Error).message}` }] };
      return this.state;
    }
    const next = new Map<string, CachedFile>();
    for (const name of names) {
      const path = join(this.dir, name);
      next.set(name, this.load(path, this.cache.get(name)));
    }
    this.cache = next;
    const files = [...next.values()];
    this.state = buildClusterState(
      files.flatMap((f) => f.parsed.objects),
      files.flatMap((f) => f.parsed.invalid),
    );
    return this.state;
  }

  private load(path: string, cached: CachedFile | undefined): CachedFile {
    try {
      const st = statSync(path);
      if (!st.isFile()) return { key: "", parsed: { objects: [], invalid: [] } };
      const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (cached?.key === key) return cached;
      return { key, parsed: parseManifests(readFileSync(path, "utf8"), path) };
    } catch (e) {
      // Removed between readdir and read: it will be gone from the next listing.
      return { key: "", parsed: { objects: [], invalid: (e as NodeJS.ErrnoException).code === "ENOENT" ? [] : [{ file: path, error: `cannot read manifest "${path}": ${(e as Error).message}` }] } };
    }
  }

  current(): ClusterState {
    return this.state;
  }

  watch(onChange: () => void): void {
    const debounce = this.opts.debounceMs ?? 50;
    this.watcher = watch(this.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(onChange, debounce);
    });
    // A watcher error (directory removed) must not kill the agent: the resync timer still runs.
    this.watcher.on("error", () => this.watcher?.close());
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
