// The owned-table engine: keeps one nftables table equal to a structure (named sets and
// chains, with a hash) and its set elements, changing only what changed. Any owner whose
// table changes often uses it (the policy table now, a Service proxy next); tables written
// whole use ./owned-table.ts. Three ways to write, cheapest first:
// - only elements changed: one netlink batch, no process started;
// - the structure changed: one `nft -f` transaction with the chains and sets that differ and
//   the element changes;
// - the kernel's table is not the one this engine last wrote (first pass, a failed write, a
//   table changed behind its back): a table with this structure is adopted (its elements
//   corrected over netlink) once its fingerprint checks out, any other is replaced whole.
//
// The marker chain's rule carries the structure hash; the `engine_state` set's element
// carries the fingerprint of the chains and rules as the kernel lists them (./fingerprint.ts),
// recorded after every structural write. A restarted owner adopts a table only when both
// match, so a hand-edited chain is repaired, and the change says so.
//
// A failure for one object never stops the rest: an element the kernel refuses is left out
// (and tried again next time) while the others are written; a structural transaction that
// the kernel or nft refuses is retried without the elements (written over netlink after),
// and when a chain or set is at fault the owner is told which (StructureRejected) so it can
// leave out what produced it.
import { decodeKey, encodeKey, isErrno, type Nftables, type NftKeyType, type SetElement, type SetElemChange } from "../kernel/index.ts";
import { type ChainPrints, chainPrints, combine } from "./fingerprint.ts";
import { type TableName, tableRef } from "./names.ts";

export interface SetSpec {
  key: readonly NftKeyType[];
  /** A verdict map (elements "KEY : goto CHAIN"). */
  verdict: boolean;
  /** A data map: the value's types (elements "KEY : VALUE", VALUE's parts joined by " . "). */
  data?: readonly NftKeyType[];
  /**
   * Written by the packet path (`flags dynamic,timeout`, filled by `update @set`): the owner
   * writes no elements, and the engine never corrects the kernel's. `timeout` is nft's
   * default timeout text ("3h").
   */
  dynamic?: { timeout: string };
  comment?: string;
}

export interface ChainSpec {
  /** A base chain's hook line ("type filter hook forward priority 0; policy accept;"). */
  hook?: string;
  rules: readonly string[];
}

export interface TableStructure {
  /** Changes whenever a set or chain does. */
  hash: string;
  sets: ReadonlyMap<string, SetSpec>;
  chains: ReadonlyMap<string, ChainSpec>;
}

/**
 * One set's elements as nft writes them ("10.0.0.1", "10.0.0.1 . tcp . 80", "10.0.0.1 : goto
 * ingress-np/x"): a Map's keys will do, or an owner's own store that makes the strings only
 * when they are read (the Service proxy's endpoint elements: see services/elements.ts).
 */
export interface ElementSet {
  readonly size: number;
  has(element: string): boolean;
  keys(): IterableIterator<string>;
}

/** Set name -> its elements. */
export type Elements = ReadonlyMap<string, ElementSet>;
/** Per set: elements to add and to delete since the last sync. */
export type ElementDelta = ReadonlyMap<string, { add: ReadonlySet<string>; del: ReadonlySet<string> }>;

/** An object the kernel (or nft) refused, left out of what was written. */
export interface Rejected {
  kind: "element" | "chain" | "set";
  /** The set or chain. */
  name: string;
  element?: string;
  /** The chain's rule nft named (absent: the chain's declaration). */
  rule?: string;
  reason: string;
}

/** A structural write failed for these chains or sets; the owner leaves out what produced them and syncs again. */
export class StructureRejected extends Error {
  constructor(readonly rejected: Rejected[], message: string) {
    super(message);
  }
}

export interface EngineSync {
  changes: string[];
  /** Kernel writes made (0 when nothing changed). */
  writes: number;
  /** Elements the kernel refused this time (still wanted; tried again next sync). */
  rejected: Rejected[];
}

export interface TableEngineOptions {
  table: TableName;
  /** Applies an `nft -f` script as one transaction; throws with nft's message. */
  apply: (script: string, what: string) => void;
  /** The netlink side; opened on first use in the owner's namespace. */
  netlink: () => Nftables;
  /** Chain holding the marker rule; the marker's comment prefix. */
  markerChain: string;
  markerPrefix: string;
  /** The engine's own bookkeeping set (the fingerprint). */
  stateSet: string;
  /**
   * A whole write declares the sets empty and writes the elements over netlink after it
   * (nft parses ~100,000 inline elements far more slowly than the kernel takes them).
   */
  elementsOverNetlink?: boolean;
}

const FINGERPRINT_KEY = "fingerprint";
/** Elements parsed and written at a time. */
const CHUNK = 4096;
const STATE_KEY: readonly NftKeyType[] = ["ifname"];

export class TableEngine {
  /** The structure the kernel has with exactly our elements; "none": no table; undefined: unknown. */
  private applied?: TableStructure | "none";
  /** The handle of the table this engine last wrote or adopted (a re-created table gets a new one). */
  private appliedHandle?: bigint | "none";
  /** Elements the kernel refused, by set: written again on the next sync while still wanted. */
  private refused = new Map<string, Set<string>>();
  /** The prints of the kernel's chains as of the last structural write or adoption (see ./fingerprint.ts). */
  private prints: ChainPrints = new Map();
  /**
   * Chains written but not yet fingerprinted: a whole write leaves reading the whole table
   * (~0.1-0.3 s at 13,500 rules) to the next verifying sync, off the path of the write that
   * made it; until then a restart finds no matching fingerprint and rewrites (safe, once).
   */
  private unrecorded?: "all" | Set<string>;
  private nl?: Nftables;
  private readonly T: string;

  constructor(private readonly o: TableEngineOptions) {
    this.T = tableRef(o.table);
  }

  /** Forgets what the kernel has: the next sync checks it. */
  reset(): void {
    this.applied = undefined;
  }

  close(): void {
    this.nl?.close();
    this.nl = undefined;
  }

  /**
   * Brings the table in line: `s` undefined means no table. `delta` is what changed in
   * `elements` since the last sync (for the sets both structures have). With `verify`, first
   * checks over netlink that the kernel's table is the one last written (same handle).
   */
  sync(s: TableStructure | undefined, elements: Elements, delta: ElementDelta, verify = true): EngineSync {
    if (verify && this.applied !== undefined && this.handle() !== this.appliedHandle) this.applied = undefined;
    if (verify && this.unrecorded && this.applied !== undefined && this.applied !== "none") this.recordFingerprint();
    const out: EngineSync = { changes: [], writes: 0, rejected: [] };
    try {
      this.write(s, elements, delta, out);
    } catch (e) {
      this.applied = undefined;
      throw e;
    }
    return out;
  }

  private write(s: TableStructure | undefined, elements: Elements, delta: ElementDelta, out: EngineSync): void {
    if (!s) {
      if (this.applied === "none") return;
      if (this.handle() !== "none") {
        this.o.apply(`delete table ${this.T}\n`, `delete table ${this.T}`);
        out.writes++;
        out.changes.push(`delete table ${this.T}`);
      }
      this.refused.clear();
      this.unrecorded = undefined;
      this.applied = "none";
      this.appliedHandle = "none";
      return;
    }
    const prev = this.applied;
    if (prev === undefined || prev === "none") {
      const present = this.handle() !== "none";
      // Written by this engine, its fingerprint not recorded yet (a write failed since): record it now.
      if (present && this.unrecorded && this.handle() === this.appliedHandle) this.recordFingerprint();
      const found = present ? this.adoptable(s) : { kind: "absent" as const };
      if (found.kind === "same") {
        // The kernel has this structure, as written (an owner restart): correct its elements only.
        this.refused.clear();
        this.adopt(s, elements, out);
      } else {
        if (found.kind === "differs") out.changes.push(`repair table ${this.T}: ${found.why}`);
        this.whole(s, elements, present, out);
      }
      this.applied = s;
      this.appliedHandle = this.handle();
      return;
    }
    if (prev.hash !== s.hash) {
      this.delta(prev, s, elements, delta, out);
      this.applied = s;
      return;
    }
    this.elements(s, this.withRefused(s, elements, delta), out);
  }

  /** Whether the kernel's table can be adopted as it is: "same"; "other": another structure; "differs": this one, changed. */
  private adoptable(s: TableStructure): { kind: "same" | "other" } | { kind: "differs"; why: string } {
    const nl = this.netlink();
    const marker = nl.rules(this.o.table.family, this.o.table.name, this.o.markerChain).find((r) => r.comment?.startsWith(this.o.markerPrefix));
    const hash = marker?.comment?.slice(this.o.markerPrefix.length);
    if (hash !== s.hash) return { kind: "other" };
    let recorded: string | undefined;
    try {
      recorded = nl.setElement({ ...this.ref(this.o.stateSet) }, encodeKey(STATE_KEY, [FINGERPRINT_KEY]))?.comment;
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
    if (recorded === undefined) return { kind: "differs", why: "it records no fingerprint of its chains (written by an older mncni, or by an agent that stopped before its next pass recorded it)" };
    const have = combine(chainPrints(nl, this.o.table, undefined, this.prints));
    if (have !== recorded) return { kind: "differs", why: `its chains differ from what was written (fingerprint ${have}, recorded ${recorded}): rewritten whole` };
    return { kind: "same" };
  }

  /** Reads every set's elements from the kernel and writes the difference. */
  private adopt(s: TableStructure, elements: Elements, out: EngineSync): void {
    const nl = this.netlink();
    const delta = new Map<string, { add: Set<string>; del: Set<string> }>();
    for (const [name, def] of s.sets) {
      if (def.dynamic) continue;
      const have = new Set(nl.setElements(this.ref(name)).map((e) => formatElement(def, e)));
      const want = new Set(elements.get(name)?.keys());
      const add = new Set([...want].filter((e) => !have.has(e)));
      const del = new Set([...have].filter((e) => !want.has(e)));
      if (add.size || del.size) delta.set(name, { add, del });
    }
    this.elements(s, delta, out, "correct");
  }

  /** The whole table in one transaction (replacing whatever is there); elements over netlink when the kernel refuses them inline. */
  private whole(s: TableStructure, elements: Elements, present: boolean, out: EngineSync): void {
    this.refused.clear();
    const what = `${present ? "replace" : "create"} table ${this.T} (${[...s.chains.values()].reduce((n, c) => n + c.rules.length, 0)} rules, ${s.sets.size} sets)`;
    const inline = tableScript(this.o, s, this.o.elementsOverNetlink ? new Map() : elements);
    try {
      this.o.apply(inline.text, what);
      if (this.o.elementsOverNetlink) this.elements(s, everyElement(s, elements), out, "add");
    } catch (e) {
      const located = this.locate(inline, e as Error);
      if (located.objects.length) throw this.rejection(located.objects, e as Error);
      // An element (two owners of one key, a bad value): the structure alone, then the elements one by one.
      const bare = tableScript(this.o, s, new Map());
      try {
        this.o.apply(bare.text, what);
      } catch (e2) {
        throw this.rejection(this.locate(bare, e2 as Error).objects, e2 as Error);
      }
      const all = new Map([...s.sets.keys()].map((n) => [n, { add: new Set(elements.get(n)?.keys()), del: new Set<string>() }]));
      this.elements(s, all, out, "add");
    }
    out.writes++;
    out.changes.push(what);
    this.unrecorded = "all";
  }

  /** From the structure in the kernel to the next, with the element changes of the sets both have. */
  private delta(prev: TableStructure, next: TableStructure, elements: Elements, delta: ElementDelta, out: EngineSync): void {
    const full = this.withRefused(next, elements, delta);
    const d = deltaScript(this.o, prev, next, elements, full, true);
    try {
      this.o.apply(d.text, `update table ${this.T}`);
    } catch (e) {
      const located = this.locate(d, e as Error);
      if (located.objects.length) throw this.rejection(located.objects, e as Error);
      const bare = deltaScript(this.o, prev, next, elements, full, false);
      try {
        this.o.apply(bare.text, `update table ${this.T}`);
      } catch (e2) {
        throw this.rejection(this.locate(bare, e2 as Error).objects, e2 as Error);
      }
      const onlyNew = new Map([...full].filter(([n]) => prev.sets.has(n)));
      for (const n of next.sets.keys()) if (!prev.sets.has(n)) onlyNew.set(n, { add: new Set(elements.get(n)?.keys()), del: new Set() });
      this.elements(next, onlyNew, out, "add");
    }
    out.writes++;
    out.changes.push(...d.changes);
    if (this.unrecorded === "all") return;
    this.unrecorded = new Set([...(this.unrecorded ?? []), ...d.touched]);
    this.recordFingerprint();
  }

  /** `delta` plus the elements refused before that are still wanted. */
  private withRefused(s: TableStructure, elements: Elements, delta: ElementDelta): ElementDelta {
    if (!this.refused.size) return delta;
    const out = new Map([...delta].map(([n, d]) => [n, { add: new Set(d.add), del: new Set(d.del) }]));
    for (const [set, els] of this.refused) {
      if (!s.sets.has(set)) continue;
      const want = elements.get(set);
      for (const e of els) {
        if (!want?.has(e)) continue;
        const d = out.get(set) ?? { add: new Set<string>(), del: new Set<string>() };
        d.add.add(e);
        out.set(set, d);
      }
    }
    this.refused.clear();
    return out;
  }

  /**
   * Element changes over netlink, one transaction; when the kernel refuses it, split until
   * each refused element is alone, write the rest, and remember the refused ones.
   */
  private elements(s: TableStructure, delta: ElementDelta, out: EngineSync, verb = ""): number {
    let nl: Nftables | undefined;
    let written = 0;
    const tryApply = (list: SetElemChange[]): void => {
      try {
        nl!.apply(list);
        written += count(list);
        return;
      } catch (e) {
        const n = count(list);
        if (n > 1) {
          const singles = list.flatMap((c) => c.elements.map((el) => ({ ...c, elements: [el] })));
          const half = Math.ceil(singles.length / 2);
          tryApply(singles.slice(0, half));
          tryApply(singles.slice(half));
          return;
        }
        const c = list.find((x) => x.elements.length)!;
        // Deleting what is not there is what a delete wants.
        if (c.op === "del" && isErrno(e, "ENOENT")) return;
        const def = s.sets.get(c.set)!;
        const element = formatElement(def, c.elements[0]!);
        if (c.op === "add") {
          const r = this.refused.get(c.set) ?? new Set<string>();
          r.add(element);
          this.refused.set(c.set, r);
        }
        out.rejected.push({ kind: "element", name: c.set, element, reason: (e as Error).message });
      }
    };
    // In chunks: 160,000 elements parsed at once held ~50 MB of key buffers at the peak.
    for (const chunk of this.toNetlink(s, delta)) {
      nl ??= this.netlink();
      tryApply(chunk);
    }
    if (written) {
      out.writes++;
      out.changes.push(`${verb ? `${verb} ` : ""}${written} element change(s) in table ${this.T}`);
    }
    return written;
  }

  /** Element changes as netlink set changes, in chunks: deletions (by key) before additions. */
  private *toNetlink(s: TableStructure, delta: ElementDelta): Generator<SetElemChange[]> {
    for (const op of ["del", "add"] as const) {
      let chunk: SetElemChange[] = [];
      let n = 0;
      for (const [name, d] of delta) {
        const def = s.sets.get(name);
        if (!def) continue;
        const ref = this.ref(name);
        let list: SetElement[] = [];
        for (const e of op === "del" ? d.del : d.add) {
          list.push(parseElement(def, e, op === "add"));
          if (++n < CHUNK) continue;
          chunk.push({ ...ref, op, elements: list });
          yield chunk;
          chunk = [];
          list = [];
          n = 0;
        }
        if (list.length) chunk.push({ ...ref, op, elements: list });
      }
      if (chunk.length) yield chunk;
    }
  }

  /**
   * Records the fingerprint of the chains as the kernel now has them (after structural
   * writes): every chain after a whole write, the chains deltas touched after deltas.
   */
  private recordFingerprint(): void {
    const touched = this.unrecorded === "all" ? undefined : this.unrecorded;
    this.unrecorded = undefined;
    const nl = this.netlink();
    const fp = combine(chainPrints(nl, this.o.table, touched, this.prints));
    const key = encodeKey(STATE_KEY, [FINGERPRINT_KEY]);
    const ref = this.ref(this.o.stateSet);
    const old = nl.setElement(ref, key);
    nl.apply([
      { ...ref, op: "del", elements: old ? [{ key }] : [] },
      { ...ref, op: "add", elements: [{ key, comment: fp }] },
    ]);
  }

  /** The objects on the lines nft's error names (none when it names only element lines, or no line). */
  private locate(sc: Script, e: Error): { objects: Rejected[] } {
    const objects: Rejected[] = [];
    for (const m of e.message.matchAll(/(?:\/dev\/stdin|<stdin>|-):(\d+):\d+(?:-\d+)?: Error: ([^\n]*)/g)) {
      const line = sc.lines[Number(m[1]) - 1];
      if (!line || line.elements || !line.object) continue;
      if (!objects.some((o) => o.kind === line.object!.kind && o.name === line.object!.name && o.rule === line.object!.rule)) objects.push({ ...line.object, reason: m[2]! });
    }
    return { objects };
  }

  private rejection(objects: Rejected[], e: Error): Error {
    return objects.length ? new StructureRejected(objects, e.message) : e;
  }

  /** The table's handle, or "none". */
  private handle(): bigint | "none" {
    return this.netlink().table(this.o.table.family, this.o.table.name)?.handle ?? "none";
  }

  private ref(set: string) {
    return { family: this.o.table.family, table: this.o.table.name, set } as const;
  }

  private netlink(): Nftables {
    this.nl ??= this.o.netlink();
    return this.nl;
  }
}

type ScriptObject = { kind: "chain" | "set"; name: string; rule?: string };

/** What the scripts need to know of the engine's table. */
export type ScriptTarget = Pick<TableEngineOptions, "table" | "markerChain" | "markerPrefix" | "stateSet">;

const markerRule = (o: ScriptTarget, hash: string) => `counter comment "${o.markerPrefix}${hash}"`;

/** The whole table, replacing whatever the kernel has under that name, in one transaction. */
export function tableScript(o: ScriptTarget, s: TableStructure, elements: Elements): Script {
  const T = tableRef(o.table);
  const sc = new Script();
  sc.line(`table ${T} {}`);
  sc.line(`delete table ${T}`);
  sc.line(`table ${T} {`);
  sc.line(`  set ${o.stateSet} { type ${STATE_KEY.join(" . ")}; size 4; comment "engine bookkeeping: the fingerprint of the chains"; }`);
  for (const [name, def] of s.sets) sc.line(`  ${setDecl(name, def, elements.get(name)?.keys())}`, { kind: "set", name }, elements.get(name)?.size ? true : false);
  for (const [name, c] of s.chains) {
    sc.line(`  chain ${name} {`, { kind: "chain", name });
    if (c.hook) sc.line(`    ${c.hook}`, { kind: "chain", name });
    for (const r of c.rules) sc.line(`    ${r}`, { kind: "chain", name, rule: r });
    sc.line("  }", { kind: "chain", name });
  }
  sc.line(`  chain ${o.markerChain} {`);
  sc.line(`    ${markerRule(o, s.hash)}`);
  sc.line("  }");
  sc.line("}");
  return sc;
}

/**
 * Deletions first (a dispatch element may point at a chain that goes), then new sets and
 * chains, flushed and removed chains, removed sets, rules, and the elements to add.
 */
export function deltaScript(o: ScriptTarget, prev: TableStructure, next: TableStructure, elements: Elements, delta: ElementDelta, withElements = true): Script & { changes: string[]; touched: string[] } {
  const T = tableRef(o.table);
  const sc = new Script() as Script & { changes: string[]; touched: string[] };
  if (withElements) for (const [name, d] of delta) if (prev.sets.has(name) && next.sets.has(name) && d.del.size) sc.line(`delete element ${T} ${name} { ${[...d.del].map(elementKey).join(", ")} }`, undefined, true);
  const newSets = [...next.sets].filter(([n]) => !prev.sets.has(n));
  for (const [name, def] of newSets) sc.line(`add ${setDecl(name, def, withElements ? elements.get(name)?.keys() : undefined)}`.replace(/^add (set|map) (\S+) \{/, `add $1 ${T} $2 {`), { kind: "set", name }, withElements && (elements.get(name)?.size ?? 0) > 0);
  const newChains = [...next.chains].filter(([n]) => !prev.chains.has(n));
  for (const [name, c] of newChains) sc.line(c.hook ? `add chain ${T} ${name} { ${c.hook} }` : `add chain ${T} ${name}`, { kind: "chain", name });
  const changed = [...next.chains].filter(([n, c]) => prev.chains.has(n) && !sameChain(prev.chains.get(n)!, c));
  const gone = [...prev.chains.keys()].filter((n) => !next.chains.has(n));
  for (const [name] of changed) sc.line(`flush chain ${T} ${name}`);
  for (const name of gone) sc.line(`flush chain ${T} ${name}`);
  for (const name of gone) sc.line(`delete chain ${T} ${name}`);
  const goneSets = [...prev.sets.keys()].filter((n) => !next.sets.has(n));
  for (const name of goneSets) sc.line(`delete ${prev.sets.get(name)!.verdict || prev.sets.get(name)!.data ? "map" : "set"} ${T} ${name}`);
  for (const [name, c] of [...newChains, ...changed]) for (const r of c.rules) sc.line(`add rule ${T} ${name} ${r}`, { kind: "chain", name, rule: r });
  if (withElements) for (const [name, d] of delta) if (prev.sets.has(name) && next.sets.has(name) && d.add.size) sc.line(`add element ${T} ${name} { ${[...d.add].join(", ")} }`, undefined, true);
  sc.line(`flush chain ${T} ${o.markerChain}`);
  sc.line(`add rule ${T} ${o.markerChain} ${markerRule(o, next.hash)}`);
  sc.touched = [...newChains.map(([n]) => n), ...changed.map(([n]) => n), ...gone, o.markerChain];
  const n = (k: number, what: string) => (k ? [`${k} ${what}${k === 1 ? "" : "s"}`] : []);
  sc.changes = [`update table ${T}: ${[...n(newChains.length, "chain"), ...n(changed.length, "changed chain"), ...n(gone.length, "removed chain"), ...n(newSets.length, "set"), ...n(goneSets.length, "removed set")].join(", ") || "elements"}`];
  return sc;
}



/** An nft script that knows what each of its lines declares (to name what nft refused). */
export class Script {
  readonly lines: { object?: ScriptObject; elements?: boolean }[] = [];
  private readonly parts: string[] = [];
  line(text: string, object?: ScriptObject, elements = false): void {
    this.parts.push(text);
    this.lines.push({ ...(object ? { object } : {}), ...(elements ? { elements } : {}) });
  }
  get text(): string {
    return this.parts.join("\n") + "\n";
  }
}

const count = (l: SetElemChange[]) => l.reduce((n, c) => n + c.elements.length, 0);

/** A map element's key (deletions name the key alone). */
export const elementKey = (e: string) => e.split(" : ")[0]!;

function setDecl(name: string, def: SetSpec, elements?: Iterable<string>): string {
  const els = elements ? [...elements] : [];
  const kind = def.verdict || def.data ? "map" : "set";
  const type = `type ${def.key.join(" . ")}${def.verdict ? " : verdict" : def.data ? ` : ${def.data.join(" . ")}` : ""};`;
  const dynamic = def.dynamic ? ` flags dynamic,timeout; timeout ${def.dynamic.timeout};` : "";
  return `${kind} ${name} { ${type}${dynamic}${def.comment !== undefined ? ` comment "${def.comment}";` : ""}${els.length ? ` elements = { ${els.join(", ")} };` : ""} }`;
}

/** Rule arrays are often the same array from one structure to the next: compared by reference first. */
const sameChain = (a: ChainSpec, b: ChainSpec) =>
  a.hook === b.hook && (a.rules === b.rules || (a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i])));

/** An element as owners write it, from the kernel's bytes. */
function formatElement(def: SetSpec, e: SetElement): string {
  const key = decodeKey(def.key, e.key).join(" . ");
  if (e.verdict) return `${key} : ${e.verdict.code} ${e.verdict.chain}`;
  return def.data && e.data ? `${key} : ${decodeKey(def.data, e.data).join(" . ")}` : key;
}

function parseElement(def: SetSpec, e: string, withData: boolean): SetElement {
  // indexOf and slice, not split: a full Service sync parses ~150,000 elements here.
  const colon = e.indexOf(" : ");
  const key = colon < 0 ? e : e.slice(0, colon);
  const el: SetElement = { key: encodeKey(def.key, parts(key, def.key.length)) };
  if (!withData || colon < 0 || colon + 3 >= e.length) return el;
  const value = e.slice(colon + 3);
  if (def.data) el.data = encodeKey(def.data, parts(value, def.data.length));
  else {
    const sp = value.indexOf(" ");
    el.verdict = { code: value.slice(0, sp) as "jump" | "goto", chain: value.slice(sp + 1) };
  }
  return el;
}

/** "a . b . c" as its parts (the parts of a concatenation an element's text names). */
function parts(text: string, expect: number): string[] {
  if (expect === 1) return [text];
  const out: string[] = [];
  let at = 0;
  for (let i = text.indexOf(" . "); i >= 0; i = text.indexOf(" . ", at)) {
    out.push(text.slice(at, i));
    at = i + 3;
  }
  out.push(text.slice(at));
  return out;
}

const NO_ELEMENTS: ReadonlySet<string> = new Set();

/** Every element of every set as additions, without copying them (a full table's worth). */
function everyElement(s: TableStructure, elements: Elements): ElementDelta {
  const out = new Map<string, { add: ReadonlySet<string>; del: ReadonlySet<string> }>();
  for (const n of s.sets.keys()) {
    const m = elements.get(n);
    if (!m?.size) continue;
    // Only iterated (and its size read): the owner's keys stand in for a set.
    const add = { get size() { return m.size; }, [Symbol.iterator]: () => m.keys(), has: (k: string) => m.has(k) } as unknown as ReadonlySet<string>;
    out.set(n, { add, del: NO_ELEMENTS });
  }
  return out;
}
