// Objects with resourceVersions from one global counter, a bounded log of changes for
// watches resuming from an older resourceVersion (older than the log: 410 Gone), and the
// state file in the lab's directory, so a restarted server keeps its objects (not its log).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { KINDS, type Obj } from "./kinds.ts";

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface Change {
  rv: number;
  plural: string;
  type: EventType;
  obj: Obj;
  /** The object before a MODIFIED: a filtered watch sees it leave or enter its selection. */
  old?: Obj;
}

interface Saved {
  resourceVersion: number;
  objects: Record<string, Obj[]>;
}

export class Store {
  private readonly objects = new Map<string, Map<string, Obj>>(KINDS.map((k) => [k.plural, new Map()]));
  private readonly log: Change[] = [];
  private readonly listeners = new Set<(c: Change) => void>();
  private rv = 1;
  private compactedRv = 1;
  private saveTimer?: ReturnType<typeof setTimeout>;

  constructor(private readonly file?: string, private readonly logSize = 10_000) {
    if (file && existsSync(file)) {
      const saved = JSON.parse(readFileSync(file, "utf8")) as Saved;
      this.rv = this.compactedRv = saved.resourceVersion;
      for (const [plural, list] of Object.entries(saved.objects)) {
        for (const o of list) this.objects.get(plural)?.set(keyOf(o), o);
      }
    }
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** The oldest resourceVersion a watch can resume from. */
  get oldestResumable(): number {
    return this.compactedRv;
  }

  get(plural: string, key: string): Obj | undefined {
    return this.objects.get(plural)!.get(key);
  }

  /** Sorted by namespace/name, as kube-apiserver lists (its etcd keys). */
  list(plural: string): Obj[] {
    return [...this.objects.get(plural)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o);
  }

  /** Stores the object (or removes it, DELETED) under the next resourceVersion. */
  commit(plural: string, type: EventType, obj: Obj): Obj {
    const key = keyOf(obj);
    const old = this.objects.get(plural)!.get(key);
    const rv = ++this.rv;
    obj.metadata!.resourceVersion = String(rv);
    if (type === "DELETED") this.objects.get(plural)!.delete(key);
    else this.objects.get(plural)!.set(key, obj);
    const change: Change = { rv, plural, type, obj, ...(type === "MODIFIED" && old ? { old } : {}) };
    this.log.push(change);
    while (this.log.length > this.logSize) this.compactedRv = this.log.shift()!.rv;
    for (const l of this.listeners) l(change);
    this.scheduleSave();
    return obj;
  }

  /** Changes after a resourceVersion, or undefined when the log no longer reaches back there. */
  since(rv: number): Change[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.log.filter((c) => c.rv > rv);
  }

  /** Forgets the log: every watch from an earlier resourceVersion gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.log.length = 0;
  }

  subscribe(l: (c: Change) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private scheduleSave(): void {
    if (!this.file || this.saveTimer) return;
    // Writes come in bursts (a lab coming up): one file write per burst.
    this.saveTimer = setTimeout(() => this.save(), 100);
  }

  save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (!this.file) return;
    const saved: Saved = { resourceVersion: this.rv, objects: Object.fromEntries([...this.objects].map(([p, m]) => [p, [...m.values()]])) };
    try {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(saved));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (e) {
      // `lab down` removed the lab's directory under a running server: nothing left to keep.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}

export function keyOf(o: Obj): string {
  const ns = o.metadata?.namespace;
  return ns ? `${ns}/${o.metadata!.name}` : o.metadata!.name;
}
