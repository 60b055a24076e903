// The proxy's set elements, kept per Service: a Service is recompiled only when its object or
// its EndpointSlices changed (the state keeps unchanged objects' views by identity), and the
// table's elements are reference-counted across Services, so one endpoint change is a few
// element changes computed from that Service alone, not a pass over 10,000 of them.
//
// Endpoint elements (`KEY . SLOT : ADDRESS . PORT`, four in five of a table's elements) are
// not kept as strings: a Service keeps its slots (one string per view) and the endpoints maps
// make the element strings only when they are read (a whole write, an adoption, the few
// elements of a change). Kept as strings, 127,000 of them at 10,000 Services x 10 endpoints
// cost ~30 MB of the agent's heap, and more in the pages that garbage made around them.
import type { ElementSet } from "../../firewall/table-engine.ts";
import { GcPacer } from "../../sys/gc-pace.ts";
import type { ClusterState, EndpointSliceInfo, ServiceInfo } from "../../cluster/types.ts";
import { familyOf, portViews, proxied, type Backend, type Family, type ServicePortView } from "./endpoints.ts";
import { LOCAL_OFFSET, names, SLOT_BASE, type Form, type Klass, type PickChain, type View } from "./layout.ts";

/** What one Service puts into the table. */
interface Contribution {
  service: ServiceInfo;
  slices: readonly EndpointSliceInfo[];
  /** Set name, element, set name, element, ...: flat, not a Map per Service (10,000 of them). Not the endpoint elements: */
  elements: string[];
  /** ... those are made from these, one per Service key and view. */
  groups: SlotGroup[];
  /** The pick chains its elements name (usually one). */
  picks: PickChain[];
  /** Id, slots, id, slots, ...: per (port view id, family, view) the endpoints by slot, kept stable across changes (joined, see SlotGroup); flat, not a Map per Service. */
  slots: string[];
  /** UDP endpoints by family and the ports clients reach them on (conntrack cleanup when one goes). */
  udp?: Map<string, { family: Family; ip: string; dports: Set<number> }>;
  /** UDP Service keys that have endpoints: "IP port", or "* nodePort". */
  udpServed?: Set<string>;
  /** With affinity: the slots each key's view uses (recorded slots beyond them are pruned). */
  affinity?: Map<string, AffinitySlots>;
  /** This node's endpoints per healthCheckNodePort. */
  health?: { port: number; local: number };
}

/**
 * UDP conntrack entries that would keep a client on a stale path: through an endpoint that
 * went away ("endpoint": entries involving `ip` on these ports), or made before a Service
 * key had endpoints ("service": entries to `ip` on these ports that were not translated,
 * and never will be while the client keeps its source port; those translated to an
 * endpoint stay). Deleted by forgetStaleUdp (stale-udp.ts).
 */
export interface StaleUdp {
  by: "endpoint" | "service";
  family: Family;
  ip: string;
  dports: number[];
}

/** Slots base..base+n-1 of a key's view, whose clients the affinity map records. */
export interface AffinitySlots {
  f: Family;
  form: Form;
  /** The Service key as the compiler writes it ("IP . proto . port", "proto . nodePort"). */
  key: string;
  base: number;
  n: number;
}

export interface ElementsUpdate {
  /** Affinity records of slots no longer in use (base + n and up): deleted over netlink. */
  affinityPrune: AffinitySlots[];
  /** Per set: elements to add and to delete since the last update. */
  delta: Map<string, { add: Set<string>; del: Set<string> }>;
  staleUdp: StaleUdp[];
}

const proto = (p: string) => p.toLowerCase();

/** Services recompiled between young-generation collections (a full pass: see sys/gc-pace.ts). */
const GC_EVERY = 1000;

/** One Service key's endpoints in one view: the elements `KEY . base+i : slot i` of an endpoints map. */
interface SlotGroup {
  set: string;
  key: string;
  base: number;
  /** The endpoints ("ADDRESS . PORT") by slot, joined by ",": one string, not one per endpoint. */
  slots: string;
  n: number;
}

function* groupElements(g: SlotGroup): Generator<string> {
  const slots = g.slots.split(",");
  for (let i = 0; i < slots.length; i++) yield `${g.key} . ${g.base + i} : ${slots[i]}`;
}

/** The elements the groups of one key make, each once (two Services claiming one key may make the same). */
function keyElements(gs: readonly SlotGroup[]): Iterable<string> {
  if (gs.length === 1) return groupElements(gs[0]!);
  const out = new Set<string>();
  for (const g of gs) for (const e of groupElements(g)) out.add(e);
  return out;
}

/** How many elements the groups of one key make. */
function keySize(gs: readonly SlotGroup[]): number {
  if (gs.length === 1) return gs[0]!.n;
  // The usual case of several: one Service's two views (their slots differ by base).
  if (new Set(gs.map((g) => g.base)).size === gs.length) return gs.reduce((n, g) => n + g.n, 0);
  return (keyElements(gs) as Set<string>).size;
}

/**
 * One set's elements, as the table engine reads them: single elements counted by how many
 * Services want each, and endpoint elements made from the Services' slot groups.
 */
export class ProxySet implements ElementSet {
  readonly counts = new Map<string, number>();
  /** Service key -> its slot groups (one per view; more when two Services claim one key). */
  readonly groups = new Map<string, SlotGroup[]>();
  private grouped = 0;

  get size(): number {
    return this.counts.size + this.grouped;
  }

  has(e: string): boolean {
    if (this.counts.has(e)) return true;
    // "KEY . SLOT : ADDRESS . PORT"
    const colon = e.indexOf(" : ");
    const dot = colon < 0 ? -1 : e.lastIndexOf(" . ", colon - 1);
    if (dot < 0) return false;
    const slot = Number(e.slice(dot + 3, colon));
    const value = e.slice(colon + 3);
    return (this.groups.get(e.slice(0, dot)) ?? []).some((g) => slot >= g.base && slot < g.base + g.n && g.slots.split(",")[slot - g.base] === value);
  }

  *keys(): Generator<string> {
    yield* this.counts.keys();
    for (const gs of this.groups.values()) yield* keyElements(gs);
  }

  /** Replaces one key's groups; `changed` hears of each element that comes or goes (when the caller keeps a delta). */
  setGroups(key: string, next: SlotGroup[], changed?: (e: string, present: boolean) => void): void {
    const prev = this.groups.get(key) ?? [];
    if (changed) {
      const before = new Set(prev.length ? keyElements(prev) : []);
      const after = new Set(next.length ? keyElements(next) : []);
      for (const e of after) if (!before.has(e)) changed(e, true);
      for (const e of before) if (!after.has(e)) changed(e, false);
    }
    this.grouped += (next.length ? keySize(next) : 0) - (prev.length ? keySize(prev) : 0);
    if (next.length) this.groups.set(key, next);
    else this.groups.delete(key);
  }
}

export class ProxyElements {
  private readonly byService = new Map<string, Contribution>();
  /** set -> its elements (the table engine's Elements). */
  readonly elements = new Map<string, ProxySet>();
  private readonly pickRefs = new Map<string, { chain: PickChain; n: number }>();
  private nodePortIps = new Set<string>();
  /** The Services with a healthCheckNodePort (few): health() need not walk every Service. */
  private readonly healthBy = new Map<string, { port: number; local: number }>();
  private nodeIPs: readonly string[] = [];
  private prevServices?: ClusterState["services"];
  private prevSlices?: ClusterState["endpointSlices"];
  /** EndpointSlice keys per Service key, kept from the slices' changes. */
  private readonly slicesOf = new Map<string, string[]>();
  /**
   * Whether an update has been made: the first one's delta is every element, which the table
   * engine never reads (its first sync writes or adopts the table from the elements), so it
   * is not kept (160,000 entries at 10,000 Services).
   */
  private updated = false;

  constructor(private readonly nodeName: string) {}

  /** The pick chains some Service's elements name. */
  picks(): PickChain[] {
    return [...this.pickRefs.values()].map((r) => r.chain);
  }

  /** Services whose healthCheckNodePort this node answers, with their local endpoint counts. */
  health(): Map<number, { service: string; local: number }> {
    const out = new Map<number, { service: string; local: number }>();
    for (const [key, h] of this.healthBy) out.set(h.port, { service: key, local: h.local });
    return out;
  }

  /** `nodeIPs`: this node's addresses (the destinations of NodePort entries); `nodePortIps`: those NodePorts answer on. */
  update(state: ClusterState, nodePortIps: readonly string[], nodeIPs: readonly string[] = []): ElementsUpdate {
    this.nodeIPs = nodeIPs;
    const u: ElementsUpdate = { delta: new Map(), staleUdp: [], affinityPrune: [] };
    this.track = this.updated;
    this.updated = true;
    const pacer = new GcPacer(GC_EVERY);
    for (const key of this.changedServices(state)) {
      pacer.tick();
      const svc = state.services.get(key);
      const had = this.byService.get(key);
      if (!svc) {
        if (!had) continue;
        this.replace(had, undefined, u);
        this.byService.delete(key);
        this.healthBy.delete(key);
        continue;
      }
      const keys = this.slicesOf.get(key);
      const mine = keys ? keys.map((k) => state.endpointSlices.get(k)!) : NONE;
      if (had && had.service === svc && sameList(had.slices, mine)) continue;
      const next = this.compile(key, svc, mine, had);
      this.replace(had, next, u);
      this.byService.set(key, next);
      if (next.health) this.healthBy.set(key, next.health);
      else this.healthBy.delete(key);
    }
    const ips = new Set(nodePortIps);
    for (const ip of this.nodePortIps) if (!ips.has(ip)) this.change(names.nodePortIps(familyOf(ip)), ip, -1, u);
    for (const ip of ips) if (!this.nodePortIps.has(ip)) this.change(names.nodePortIps(familyOf(ip)), ip, +1, u);
    this.nodePortIps = ips;
    return u;
  }

  /**
   * The Services whose object or EndpointSlices changed since the last update, found by
   * identity against the last state's maps (a source keeps unchanged objects' views), with
   * no allocation per unchanged object: at 10,000 Services, rebuilding an index of the slices
   * on every update was 95 % of an endpoint change's time.
   */
  private changedServices(state: ClusterState): Set<string> {
    const dirty = new Set<string>();
    const ps = this.prevServices;
    if (state.services !== ps) {
      let kept = 0;
      // forEach, not for-of: no entry array allocated per Service.
      state.services.forEach((v, k) => {
        const o = ps?.get(k);
        if (o === undefined) dirty.add(k);
        else {
          kept++;
          if (o !== v) dirty.add(k);
        }
      });
      if (ps && kept !== ps.size) for (const k of ps.keys()) if (!state.services.has(k)) dirty.add(k);
    }
    const pl = this.prevSlices;
    if (state.endpointSlices !== pl) {
      const owner = (x: EndpointSliceInfo) => (x.service ? `${x.namespace}/${x.service}` : undefined);
      const unlink = (k: string, x: EndpointSliceInfo) => {
        const o = owner(x);
        if (!o) return;
        const list = this.slicesOf.get(o);
        const at = list ? list.indexOf(k) : -1;
        if (at >= 0) list!.splice(at, 1);
        if (list && !list.length) this.slicesOf.delete(o);
        dirty.add(o);
      };
      let kept = 0;
      state.endpointSlices.forEach((v, k) => {
        const o = pl?.get(k);
        if (o !== undefined) kept++;
        if (o === v) return;
        if (o) unlink(k, o);
        const n = owner(v);
        if (!n) return;
        // A list, not a Set: a Service has one slice or a few, and a Set each cost 3.6 MB at 10,000.
        const list = this.slicesOf.get(n);
        if (!list) this.slicesOf.set(n, [k]);
        else if (!list.includes(k)) list.push(k);
        dirty.add(n);
      });
      if (pl && kept !== pl.size) for (const [k, o] of pl) if (!state.endpointSlices.has(k)) unlink(k, o);
    }
    this.prevServices = state.services;
    this.prevSlices = state.endpointSlices;
    return dirty;
  }

  private replace(had: Contribution | undefined, next: Contribution | undefined, u: ElementsUpdate): void {
    // Additions first: an element both want keeps its count above zero throughout.
    if (next) for (let i = 0; i < next.elements.length; i += 2) this.change(next.elements[i]!, next.elements[i + 1]!, +1, u);
    if (had) for (let i = 0; i < had.elements.length; i += 2) this.change(had.elements[i]!, had.elements[i + 1]!, -1, u);
    this.regroup(had, next, u);
    if (next) for (const c of next.picks) this.pick(names.pickChain(c.f, c.form, c.n, c.view, c.affinity), c, +1);
    if (had) for (const c of had.picks) this.pick(names.pickChain(c.f, c.form, c.n, c.view, c.affinity), c, -1);
    for (const [k, old] of had?.udp ?? []) {
      const now = next?.udp?.get(k);
      const gone = [...old.dports].filter((p) => !now?.dports.has(p));
      if (gone.length) u.staleUdp.push({ by: "endpoint", family: old.family, ip: old.ip, dports: gone });
    }
    // Every recompiled Service with affinity is checked (a restarted agent's first pass
    // checks them all): records of slots beyond its count go, and all of a key no longer there.
    for (const now of next?.affinity?.values() ?? []) u.affinityPrune.push(now);
    for (const [id, old] of had?.affinity ?? []) if (!next?.affinity?.has(id)) u.affinityPrune.push({ ...old, n: 0 });
    for (const k of next?.udpServed ?? []) {
      if (had?.udpServed?.has(k)) continue;
      const [ip, port] = k.split(" ");
      for (const dst of ip === "*" ? this.nodeIPs : [ip!]) u.staleUdp.push({ by: "service", family: familyOf(dst), ip: dst, dports: [Number(port)] });
    }
  }

  private pick(name: string, chain: PickChain, by: number): void {
    const r = this.pickRefs.get(name) ?? { chain, n: 0 };
    r.n += by;
    if (r.n > 0) this.pickRefs.set(name, r);
    else this.pickRefs.delete(name);
  }

  private track = false;

  private set(name: string): ProxySet {
    let s = this.elements.get(name);
    if (!s) this.elements.set(name, (s = new ProxySet()));
    return s;
  }

  private change(set: string, e: string, by: number, u: ElementsUpdate): void {
    const m = this.set(set).counts;
    const n = (m.get(e) ?? 0) + by;
    const had = m.has(e);
    if (n > 0) m.set(e, n);
    else m.delete(e);
    if (this.track && had !== n > 0) this.delta(set, e, n > 0, u);
  }

  /** An element came (or went) since the last update; one that comes back within the update is no change. */
  private delta(set: string, e: string, present: boolean, u: ElementsUpdate): void {
    let d = u.delta.get(set);
    if (!d) u.delta.set(set, (d = { add: new Set(), del: new Set() }));
    if (present) {
      if (!d.del.delete(e)) d.add.add(e);
    } else if (!d.add.delete(e)) d.del.add(e);
  }

  /** The slot groups of the keys `had` or `next` name: `had`'s out, `next`'s in. */
  private regroup(had: Contribution | undefined, next: Contribution | undefined, u: ElementsUpdate): void {
    const touched = new Map<string, Set<string>>();
    for (const g of [...(had?.groups ?? []), ...(next?.groups ?? [])]) {
      let keys = touched.get(g.set);
      if (!keys) touched.set(g.set, (keys = new Set()));
      keys.add(g.key);
    }
    for (const [set, keys] of touched) {
      const s = this.set(set);
      const changed = this.track ? (e: string, present: boolean) => this.delta(set, e, present, u) : undefined;
      for (const key of keys) {
        const kept = (s.groups.get(key) ?? []).filter((g) => !had?.groups.includes(g));
        s.setGroups(key, [...kept, ...(next?.groups ?? []).filter((g) => g.set === set && g.key === key)], changed);
      }
    }
  }

  private compile(key: string, svc: ServiceInfo, slices: readonly EndpointSliceInfo[], had: Contribution | undefined): Contribution {
    const c: Contribution = { service: svc, slices, elements: [], groups: [], picks: [], slots: [] };
    if (!proxied(svc)) return c;
    const add = (set: string, e: string) => void c.elements.push(interned(set), e);
    const views = portViews(key, svc, slices, this.nodeName);
    let localHealth = 0;
    for (const v of views) {
      // Slots are kept per Service: their id needs only the port, family and view (a few dozen distinct).
      const id = (view: View) => interned(`${v.port.port}/${v.port.protocol}/${v.family}/${view}`);
      // The local view is read only by the Local policies' chains: other Services leave it out
      // (at 10,000 Services, 20,000 elements fewer).
      const needLocal = svc.internalTrafficPolicy === "Local" || svc.externalTrafficPolicy === "Local";
      const slotViews: { view: View; id: string; n: number }[] = [];
      for (const view of needLocal ? (["all", "local"] as const) : (["all"] as const)) {
        const sid = id(view);
        const n = this.slots(c, had, sid, view === "all" ? v.all : v.local);
        if (n) slotViews.push({ view, id: sid, n });
      }
      localHealth = Math.max(localHealth, v.local.length);
      const f = v.family;
      const p = proto(v.port.protocol);
      const affinity = svc.affinitySeconds;
      const ipsOf = (list: readonly string[]) => list.filter((ip) => familyOf(ip) === f);
      const keys: { form: Form; key: string; klass: Klass; local: boolean }[] = [];
      for (const ip of ipsOf(svc.clusterIPs)) keys.push({ form: "ip", key: `${ip} . ${p} . ${v.port.port}`, klass: svc.internalTrafficPolicy === "Local" ? "internal-local" : "internal", local: svc.internalTrafficPolicy === "Local" });
      const ext = svc.externalTrafficPolicy === "Local";
      for (const ip of [...ipsOf(svc.externalIPs), ...ipsOf(svc.loadBalancerIPs)]) keys.push({ form: "ip", key: `${ip} . ${p} . ${v.port.port}`, klass: ext ? "external-local-ip" : "external-ip", local: false });
      if (v.port.nodePort) keys.push({ form: "np", key: `${p} . ${v.port.nodePort}`, klass: ext ? "external-local-np" : "external-np", local: false });
      for (const k of keys) {
        if (!v.all.length) {
          add(names.noEndpoints(f, k.form), `${k.key} : goto ${names.reject}`);
          continue;
        }
        // internalTrafficPolicy Local without an endpoint here: dropped, as kube-proxy does.
        if (k.local && !v.local.length) {
          add(names.noEndpoints(f, k.form), `${k.key} : goto ${names.drop}`);
          continue;
        }
        add(k.form === "ip" ? names.serviceIps(f) : names.nodePorts(f), `${k.key} : goto ${names.klass(f, k.klass)}`);
        if (v.port.protocol === "UDP") (c.udpServed ??= new Set()).add(k.form === "ip" ? `${k.key.split(" . ")[0]} ${v.port.port}` : `* ${v.port.nodePort}`);
        for (const { view, id: sid, n } of slotViews) {
          const chain = names.pickChain(f, k.form, n, view, affinity);
          const pc = pickChain(chain, { f, form: k.form, n, view, ...(affinity ? { affinity } : {}) });
          if (!c.picks.includes(pc)) c.picks.push(pc);
          add(names.pick(f, k.form, view), `${k.key} : goto ${chain}`);
          const base = SLOT_BASE + (view === "local" ? LOCAL_OFFSET : 0);
          if (affinity) (c.affinity ??= new Map()).set(`${f}|${k.form}|${k.key}|${view}`, { f, form: k.form, key: k.key, base, n });
          c.groups.push({ set: interned(names.endpoints(f, k.form)), key: k.key, base, slots: slotsOf(c, sid)!, n });
        }
      }
      for (const b of v.local) add(names.hairpin(f), `${b.ip} . ${b.ip}`);
      if (v.port.protocol === "UDP") for (const b of v.all) this.udp(c, f, b, [v.port.port, ...(v.port.nodePort ? [v.port.nodePort] : [])]);
    }
    if (svc.healthCheckNodePort) c.health = { port: svc.healthCheckNodePort, local: localHealth };
    return c;
  }

  private udp(c: Contribution, family: Family, b: Backend, dports: number[]): void {
    const k = `${b.ip}`;
    c.udp ??= new Map();
    const u = c.udp.get(k) ?? { family, ip: b.ip, dports: new Set<number>() };
    for (const p of dports) u.dports.add(p);
    c.udp.set(k, u);
  }

  /**
   * The endpoints in slots: a surviving endpoint keeps its slot (affinity and open flows keep
   * their endpoint), a new one fills a hole, and holes left are closed by moving the last one.
   */
  private slots(c: Contribution, had: Contribution | undefined, id: string, backends: Backend[]): number {
    // As the endpoints map's value reads ("ADDRESS . PORT"): the element is the slot's key and this.
    const want = backends.map((b) => `${b.ip} . ${b.port}`);
    const prev = had && slotsOf(had, id)?.split(",");
    if (!prev?.length || (prev.length === 1 && prev[0] === "")) {
      c.slots.push(id, want.join(","));
      return want.length;
    }
    const wanted = new Set(want);
    const slots: (string | undefined)[] = prev.map((e) => (wanted.has(e) ? e : undefined));
    const kept = new Set(slots.filter((e): e is string => e !== undefined));
    const fresh = want.filter((e) => !kept.has(e));
    for (let i = 0; i < slots.length && fresh.length; i++) if (slots[i] === undefined) slots[i] = fresh.shift();
    slots.push(...fresh);
    for (let hole = slots.indexOf(undefined); hole >= 0; hole = slots.indexOf(undefined)) {
      while (slots.length && slots[slots.length - 1] === undefined) slots.pop();
      if (hole >= slots.length) break;
      slots[hole] = slots.pop();
    }
    c.slots.push(id, slots.join(","));
    return slots.length;
  }
}

const NONE: readonly EndpointSliceInfo[] = [];

function slotsOf(c: Contribution, id: string): string | undefined {
  for (let i = 0; i < c.slots.length; i += 2) if (c.slots[i] === id) return c.slots[i + 1];
  return undefined;
}

/** One object per pick chain (a few dozen), kept by every Service that uses it instead of a copy each. */
const pickChains = new Map<string, PickChain>();
function pickChain(name: string, make: PickChain): PickChain {
  const had = pickChains.get(name);
  if (had) return had;
  pickChains.set(name, make);
  return make;
}

/**
 * One string per set name and slot id, kept by every Service instead of a copy each. Never
 * emptied, and bounded without it: set names are fixed (a few per family and form), and a
 * slot id is a port/protocol/family/view combination some Service used (at most
 * 65,535 x 3 x 2 x 2; in a cluster, its distinct Service ports: dozens to a few hundred
 * strings of ~20 bytes), not one per Service or endpoint. Dropping the unused ones would
 * need a count per string on every update, for a few kilobytes.
 */
const setNames = new Map<string, string>();
function interned(name: string): string {
  const had = setNames.get(name);
  if (had !== undefined) return had;
  setNames.set(name, name);
  return name;
}

const sameList = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export type { ServicePortView, View };
