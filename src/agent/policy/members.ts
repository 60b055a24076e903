// Set membership: which elements each named set of the compiled structure holds, from the
// pods. Kept incrementally: every pod's contribution is remembered, so a pod that comes, goes
// or changes is evaluated alone against the sets (not the whole cluster against every set),
// and a policy change computes only the sets it adds. What changed is handed out as element
// additions and deletions per set, which the engine writes over netlink.
import { AddressClaims } from "../../cluster/index.ts";
import type { ClusterState, Direction, PodInfo } from "../../cluster/types.ts";
import { type Family, familyOf } from "../../net/ip.ts";
import { type PolicyStructure, type SetDef, npNamespaceChain } from "./compile.ts";
import { namespaceLabels, type PodQuery, policyPodMap, QueryMatcher } from "./peers.ts";

/** Per set: elements to add and to delete, as nft writes them ("10.0.0.1", "10.0.0.1 . tcp . 80", "10.0.0.1 : goto ingress-np/x"). */
export type ElementDelta = Map<string, { add: Set<string>; del: Set<string> }>;

/** What identifies a pod's part in policy; pods rebuilt with the same fingerprint are unchanged. */
const fingerprint = (p: PodInfo) => JSON.stringify([p.nodeName, p.podIPs, p.labels, p.namedPorts]);

export class Members {
  /** Set name -> element -> how many pods put it there. */
  readonly elements = new Map<string, Map<string, number>>();
  /** Pod key -> set name -> the elements it put there. */
  private readonly byPod = new Map<string, Map<string, string[]>>();
  private pods = new Map<string, PodInfo>();
  /** Who claims each address: tells the changed pods without rebuilding the policy pod map. */
  private readonly claims = new AddressClaims();
  private readonly fingerprints = new WeakMap<PodInfo, string>();
  private structure?: PolicyStructure;
  private namespaces?: ClusterState["namespaces"];
  private nsKey = "";
  private matcher!: QueryMatcher;
  /** Sets whose members depend on a pod's namespace name only (query by name), by namespace. */
  private byNamespace = new Map<string, string[]>();
  /** Every other set. */
  private global: string[] = [];
  private delta: ElementDelta = new Map();

  constructor(private readonly nodeName: string) {}

  /**
   * Brings the elements in line with the structure and the state; returns what changed in
   * the sets both the previous and this structure have (new sets are written whole).
   */
  update(structure: PolicyStructure, state: ClusterState): ElementDelta {
    this.delta = new Map();
    // One owner per address: two pods showing one address would put two verdicts for one key
    // into a dispatch map (EEXIST, every pass) and give the address two identities.
    const changes = this.claims.changes(state.pods);
    const nsKey = state.namespaces === this.namespaces ? this.nsKey : JSON.stringify([...state.namespaces.values()].map((n) => [n.name, n.labels]).sort());
    const nsChanged = nsKey !== this.nsKey;
    this.namespaces = state.namespaces;
    this.nsKey = nsKey;
    const prev = this.structure;
    this.structure = structure;
    if (nsChanged || !prev) this.matcher = new QueryMatcher(state);
    if (structure !== prev) this.index(structure);

    if (!prev || nsChanged) {
      // Namespace labels move pods in and out of selector-defined sets: recompute it all.
      this.rebuild(structure, policyPodMap(state));
      return this.delta;
    }
    if (structure !== prev) this.restructure(prev, structure);
    // Pods: only the ones that came, went or changed.
    if (changes) {
      for (const [k, p] of changes) {
        const old = this.pods.get(k);
        if (p) this.pods.set(k, p);
        else this.pods.delete(k);
        if (old === p || (old && p && this.fp(old) === this.fp(p))) continue;
        if (old) this.remove(k);
        if (p) this.add(k, this.contribution(p, [...this.setsFor(p)]));
      }
      return this.delta;
    }
    const pods = policyPodMap(state);
    for (const k of this.pods.keys()) if (!pods.has(k)) this.remove(k);
    for (const [k, p] of pods) {
      const old = this.pods.get(k);
      if (old === p || (old && this.fp(old) === this.fp(p))) continue;
      if (old) this.remove(k);
      this.add(k, this.contribution(p, [...this.setsFor(p)]));
    }
    this.pods = pods;
    return this.delta;
  }

  /** Whether some policy selects a pod of this node. */
  anySelected(): boolean {
    return ["sel_ingress_4", "sel_ingress_6", "sel_egress_4", "sel_egress_6"].some((n) => (this.elements.get(n)?.size ?? 0) > 0);
  }

  /** Local pods that some policy selects, per direction ("ns/name"). */
  selected(): Record<Direction, string[]> {
    const out: Record<Direction, string[]> = { ingress: [], egress: [] };
    for (const [k, sets] of this.byPod) {
      for (const dir of ["ingress", "egress"] as const) if (sets.has(`sel_${dir}_4`) || sets.has(`sel_${dir}_6`)) out[dir].push(k);
    }
    out.ingress.sort();
    out.egress.sort();
    return out;
  }

  private fp(p: PodInfo): string {
    let f = this.fingerprints.get(p);
    if (f === undefined) this.fingerprints.set(p, (f = fingerprint(p)));
    return f;
  }

  private index(structure: PolicyStructure): void {
    this.byNamespace = new Map();
    this.global = [];
    for (const [name, def] of structure.sets) {
      const queries = def.kind === "peers" ? def.queries : def.kind === "subjects" ? [def.query] : def.kind === "ports" && typeof def.scope === "object" ? def.scope : undefined;
      // Sets of queries by namespace name only hold pods of those namespaces.
      const names = queries?.every((q) => typeof q.namespaces === "string") ? new Set(queries.map((q) => q.namespaces as string)) : undefined;
      if (!names) this.global.push(name);
      else for (const ns of names) this.byNamespace.set(ns, [...(this.byNamespace.get(ns) ?? []), name]);
    }
  }

  /** The sets a pod can be in. */
  private *setsFor(p: PodInfo): Iterable<string> {
    yield* this.byNamespace.get(p.namespace) ?? [];
    yield* this.global;
  }

  private rebuild(structure: PolicyStructure, pods: Map<string, PodInfo>): void {
    const before = new Map([...this.elements].map(([s, els]) => [s, new Set(els.keys())]));
    this.elements.clear();
    this.byPod.clear();
    this.pods = pods;
    this.compute([...structure.sets.keys()], pods);
    // The delta is the difference between what was and what is now.
    this.delta = new Map();
    for (const [s, els] of this.elements) {
      const old = before.get(s);
      if (!old) continue;
      const add = new Set([...els.keys()].filter((e) => !old.has(e)));
      const del = new Set([...old].filter((e) => !els.has(e)));
      if (add.size || del.size) this.delta.set(s, { add, del });
    }
  }

  /** A new structure: drop the sets it no longer has, fill the ones it adds, redo the node-wide ones. */
  private restructure(prev: PolicyStructure, next: PolicyStructure): void {
    const gone = [...prev.sets.keys()].filter((s) => !next.sets.has(s));
    const added = [...next.sets.keys()].filter((s) => !prev.sets.has(s));
    // dispatch and selected keep their names while what they mean changes with the policies:
    // which namespaces have NetworkPolicies, which subject sets count.
    const sameSet = (a: ReadonlySet<string>, b: ReadonlySet<string>) => a.size === b.size && [...a].every((x) => b.has(x));
    const redo = [...next.sets].filter(([s, d]) => prev.sets.has(s) && (
      (d.kind === "dispatch" && !sameSet(prev.npNamespaces[d.dir], next.npNamespaces[d.dir])) ||
      (d.kind === "selected" && !sameSet(prev.subjectSets[d.dir][d.family], next.subjectSets[d.dir][d.family])))).map(([s]) => s);
    // A set that goes takes its elements with it; one redone gives them back one by one (the delta).
    const drop = (s: string, count: boolean) => {
      for (const [k, sets] of this.byPod) {
        const els = sets.get(s);
        if (!els) continue;
        sets.delete(s);
        if (count) for (const e of els) this.dec(s, e);
        if (sets.size === 0) this.byPod.delete(k);
      }
    };
    for (const s of gone) drop(s, false);
    for (const s of redo) drop(s, true);
    for (const s of gone) {
      this.elements.delete(s);
      this.delta.delete(s);
    }
    this.compute([...added, ...redo], this.pods);
  }

  /** Fills sets from the pods (each set from the pods it can hold), recording contributions. */
  private compute(sets: string[], pods: Map<string, PodInfo>): void {
    const s = this.structure!;
    const byNs = new Map<string, PodInfo[]>();
    const local = new Map<string, PodInfo[]>();
    const keys = new Map<PodInfo, string>();
    const push = (m: Map<string, PodInfo[]>, p: PodInfo) => {
      const l = m.get(p.namespace);
      if (l) l.push(p);
      else m.set(p.namespace, [p]);
    };
    for (const [k, p] of pods) {
      keys.set(p, k);
      push(byNs, p);
      if (p.nodeName === this.nodeName) push(local, p);
    }
    const all = (m: Map<string, PodInfo[]>) => [...m.values()].flat();
    for (const name of this.selectedLast(sets)) {
      const def = s.sets.get(name)!;
      this.elements.set(name, this.elements.get(name) ?? new Map());
      const candidates = def.kind === "peers" ? this.selectAny(def.queries, byNs)
        : def.kind === "subjects" ? this.matcher.select(def.query, local)
        : def.kind === "ports" ? (def.scope === "all" ? all(byNs) : def.scope === "local" ? all(local) : this.selectAny(def.scope, byNs))
        : all(local);
      for (const p of candidates) {
        const k = keys.get(p)!;
        const els = this.contribution(p, [name], this.byPod.get(k))[0]?.[1];
        if (els?.length) this.add(k, [[name, els]], true);
      }
    }
  }

  /** The pods any of the queries selects, each once. */
  private selectAny(queries: PodQuery[], byNamespace: ReadonlyMap<string, PodInfo[]>): PodInfo[] {
    if (queries.length === 1) return this.matcher.select(queries[0]!, byNamespace);
    return [...new Set(queries.flatMap((q) => this.matcher.select(q, byNamespace)))];
  }

  /** `sets` with the selected sets last: their members are derived from the subject sets'. */
  private selectedLast(sets: string[]): string[] {
    const isSel = (n: string) => this.structure!.sets.get(n)?.kind === "selected";
    return [...sets.filter((n) => !isSel(n)), ...sets.filter(isSel)];
  }

  /** The elements a pod puts in each of `sets` (only the non-empty ones). */
  private contribution(p: PodInfo, sets: string[], already?: Map<string, string[]>): [string, string[]][] {
    const s = this.structure!;
    const local = p.nodeName === this.nodeName;
    const out: [string, string[]][] = [];
    const mine = new Map(already);
    const ips = (f: Family) => p.podIPs.filter((a) => familyOf(a) === f);
    for (const name of this.selectedLast(sets)) {
      const def: SetDef | undefined = s.sets.get(name);
      if (!def) continue;
      let els: string[] = [];
      switch (def.kind) {
        case "peers":
          if (def.queries.some((q) => this.matcher.matches(q, p))) els = ips(def.family);
          break;
        case "subjects":
          if (local && this.matcher.matches(def.query, p)) els = ips(def.family);
          break;
        case "ports": {
          const inScope = def.scope === "all" || (def.scope === "local" ? local : def.scope.some((q) => this.matcher.matches(q, p)));
          if (!inScope) break;
          const ports = p.namedPorts.filter((n) => def.ports.some((r) => n.name === r.name && (!r.protocol || n.protocol === r.protocol)));
          // Two names for one port are one element.
          els = [...new Set(ips(def.family).flatMap((a) => ports.map((n) => `${a} . ${n.protocol.toLowerCase()} . ${n.port}`)))];
          break;
        }
        case "dispatch":
          if (local && s.npNamespaces[def.dir].has(p.namespace)) els = ips(def.family).map((a) => `${a} : goto ${npNamespaceChain(def.dir, p.namespace)}`);
          break;
        case "selected":
          // Subject sets come before this one (here and in compute()), so `mine` has them all.
          if (local && [...mine.keys()].some((n) => s.subjectSets[def.dir][def.family].has(n))) els = ips(def.family);
          break;
      }
      if (els.length) {
        out.push([name, els]);
        mine.set(name, els);
      }
    }
    return out;
  }

  private add(k: string, parts: [string, string[]][], merge = false): void {
    let sets = this.byPod.get(k);
    if (!sets) this.byPod.set(k, (sets = new Map()));
    for (const [s, els] of parts) {
      if (merge && sets.has(s)) continue;
      sets.set(s, els);
      for (const e of els) this.inc(s, e);
    }
    if (sets.size === 0) this.byPod.delete(k);
  }

  private remove(k: string): void {
    const sets = this.byPod.get(k);
    if (!sets) return;
    for (const [s, els] of sets) for (const e of els) this.dec(s, e);
    this.byPod.delete(k);
  }

  private inc(s: string, e: string): void {
    let m = this.elements.get(s);
    if (!m) this.elements.set(s, (m = new Map()));
    const n = m.get(e) ?? 0;
    m.set(e, n + 1);
    if (n === 0) this.note(s, e, "add");
  }

  private dec(s: string, e: string): void {
    const m = this.elements.get(s);
    const n = m?.get(e);
    if (!m || n === undefined) return;
    if (n > 1) {
      m.set(e, n - 1);
      return;
    }
    m.delete(e);
    this.note(s, e, "del");
  }

  private note(s: string, e: string, op: "add" | "del"): void {
    let d = this.delta.get(s);
    if (!d) this.delta.set(s, (d = { add: new Set(), del: new Set() }));
    const undo = op === "add" ? d.del : d.add;
    if (undo.has(e)) undo.delete(e);
    else (op === "add" ? d.add : d.del).add(e);
  }
}

export { namespaceLabels };
