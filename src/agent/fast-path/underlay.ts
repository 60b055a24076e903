// The fast path across nodes over host-gw (docs/fast-path.md "Other nodes"): the host-gw routes
// map filled from the routes the pass programmed (the other nodes' pod CIDRs and the underlay
// device each leaves by; a peer removed, its route gone, leaves the map), and the underlay
// program attached to each of those devices' ingress. VXLAN routes leave by the VXLAN
// device and carry no gateway of host-gw's: their peers are never in the map and take the stack.
//
// The underlay program is recorded with the node's other objects (its ID and tag) and adopted by
// ID after a restart when it is this build's over the same maps. It is attached with tcx (after
// others' tcx programs, before any clsact filter; what it does not redirect goes on to them),
// on a kernel without tcx as a clsact filter of its own priority, removed alone (the underlay's
// clsact may hold filters of others). Found again by its name either way.
import { type Netlink, type RouteInfo } from "../../kernel/index.ts";
import { closeBpfFd, fdById, loadUnderlayIngress, progInfo, type HostGwRoutesMap } from "../../kernel/bpf/index.ts";
import { attachedProgram, attachProgram, detachProgram, readRecord, withFastPathLock, writeRecord, type FastPathRecord, type HookSpec } from "../../plugin/fast-path.ts";
import { hostGw } from "../routing/hostgw.ts";

/** The underlay filter's name (and the program's): how mncni finds it again. */
export const UNDERLAY_FILTER = "mncni_underlay";
/** On a kernel without tcx, its priority on the underlay's clsact ingress: apart from others' filters, removed by it. */
const UNDERLAY_PRIORITY = 0x4d4e;
export const UNDERLAY_HOOK: HookSpec = { name: UNDERLAY_FILTER, priority: UNDERLAY_PRIORITY, ownsClsact: false };

/** What the underlay program is loaded over. */
export interface UnderlayMaps {
  plain: number;
  hostGw: HostGwRoutesMap;
  counters?: number;
  /** Their IDs, as the record has them. */
  record: FastPathRecord;
}

/** The host-gw routes the kernel has (the routes step's, in this pass): pod CIDR -> device. */
export function hostGwRoutes(host: Netlink): Map<string, number> {
  const out = new Map<string, number>();
  const owned = (r: RouteInfo) => hostGw.ownsRoute(r) && r.oif !== undefined;
  for (const family of [4, 6] as const) for (const r of host.routes({ family })) if (owned(r)) out.set(r.dst, r.oif!);
  return out;
}

/** Every device carrying our underlay program (tcx, or a clsact filter). */
export function underlayDevices(host: Netlink): { index: number; name: string; progId: number }[] {
  const clsact = new Set(host.qdiscs().filter((q) => q.kind === "clsact").map((q) => q.index));
  return host.links().flatMap((l) => {
    const a = attachedProgram(host, l.index, UNDERLAY_HOOK, { clsact: clsact.has(l.index) });
    return a ? [{ index: l.index, name: l.name, progId: a.progId }] : [];
  });
}

/** Removes our program from a device, and nothing of others' (gone devices are fine). */
export function detachUnderlay(host: Netlink, index: number): void {
  detachProgram(host, index, UNDERLAY_HOOK);
}

export class UnderlayFastPath {
  private prog?: { fd: number; id: number };

  constructor(private readonly host: Netlink, private readonly dir: string) {}

  /** This build's program over the maps: the recorded one when it is that, else loaded and recorded. */
  private open(m: UnderlayMaps, changes: string[]): { fd: number; id: number } {
    if (this.prog) {
      const rec = readRecord(this.dir);
      if (rec?.underlay?.prog === this.prog.id && rec.map === m.record.map) return this.prog;
      this.close();
    }
    const fd = loadUnderlayIngress(m.plain, { hostGw: m.hostGw.fd, ...(m.counters !== undefined ? { counters: m.counters } : {}) });
    let info: ReturnType<typeof progInfo>;
    let adopted: number | undefined;
    try {
      info = progInfo(fd);
      adopted = withFastPathLock(this.dir, () => {
        const rec = readRecord(this.dir);
        if (!rec || rec.map !== m.record.map) throw new Error("the fast path's record changed while loading the underlay program");
        const was = rec.underlay ? recordedProgram(rec) : undefined;
        if (was !== undefined && progInfo(was).tag === info.tag) return was;
        if (was !== undefined) closeBpfFd(was);
        writeRecord(this.dir, { ...rec, underlay: { prog: info.id, tag: info.tag } });
        return undefined;
      });
    } catch (e) {
      closeBpfFd(fd);
      throw e;
    }
    if (adopted !== undefined) {
      closeBpfFd(fd);
      this.prog = { fd: adopted, id: progInfo(adopted).id };
      changes.push(`adopt fast path underlay program ${this.prog.id}`);
    } else {
      this.prog = { fd, id: info.id };
      changes.push(`load fast path underlay program ${info.id}`);
    }
    return this.prog;
  }

  /** The host-gw routes map and the underlay filters in line with the kernel's host-gw routes; returns what changed. */
  sync(m: UnderlayMaps): string[] {
    const changes: string[] = [];
    const want = hostGwRoutes(this.host);
    for (const r of m.hostGw.list()) {
      if (want.get(r.cidr) === r.ifindex) continue;
      m.hostGw.delete(r.cidr);
      if (!want.has(r.cidr)) changes.push(`fast path: pod CIDR ${r.cidr} takes the stack (no host-gw route)`);
    }
    const have = new Map(m.hostGw.list().map((r) => [r.cidr, r.ifindex]));
    for (const [cidr, ifindex] of want) {
      if (have.get(cidr) === ifindex) continue;
      m.hostGw.set({ cidr, ifindex });
      changes.push(`fast path: pod CIDR ${cidr} across the underlay (device ${ifindex})`);
    }
    const devices = new Set(want.values());
    const attached = underlayDevices(this.host);
    for (const d of attached) {
      if (devices.has(d.index)) continue;
      detachUnderlay(this.host, d.index);
      changes.push(`detach fast path underlay program from ${d.name}`);
    }
    if (!devices.size) return changes;
    const prog = this.open(m, changes);
    for (const index of devices) {
      if (attached.some((d) => d.index === index && d.progId === prog.id)) continue;
      attachProgram(this.host, index, prog.fd, UNDERLAY_HOOK);
      changes.push(`attach fast path underlay program to device ${index}`);
    }
    return changes;
  }

  close(): void {
    if (this.prog) closeBpfFd(this.prog.fd);
    this.prog = undefined;
  }
}

/** The recorded underlay program, open, when it is still over the recorded maps. */
function recordedProgram(rec: FastPathRecord): number | undefined {
  let fd: number;
  try {
    fd = fdById("prog", rec.underlay!.prog);
  } catch {
    return undefined;
  }
  try {
    const info = progInfo(fd);
    if (info.tag === rec.underlay!.tag && info.mapIds.includes(rec.map) && rec.hostGw !== undefined && info.mapIds.includes(rec.hostGw)) return fd;
  } catch {
    // an ID of something else
  }
  closeBpfFd(fd);
  return undefined;
}
