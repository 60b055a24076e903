// The fast path's kernel objects on a node: the pod program (src/kernel/bpf/pod-redirect.ts)
// over the plain-pods map and the host-gw routes map, one of each per node and network, attached
// by the plugin to each pod's host-side device (tcx ingress; clsact ingress, direct action, on a
// kernel without tcx) and kept filled by the agent (which also attaches the underlay program: src/agent/fast-path/underlay.ts).
//
// bpffs is not mounted on the nodes, so nothing is pinned: the objects are found by their IDs,
// recorded in a file beside the network's IPAM reservations (dataDir/<network>), checked
// against what the kernel says of them (the program's tag and its map's ID) before use. What
// keeps them alive: the filters on the pods' devices hold the program, the program holds the
// map, and the running agent holds both. With the agent down and no pod attached they are
// freed; the next ADD (or agent start) loads new ones under the file's lock and records them.
// sys/files and sys/paths, not node:fs and node:path: this module is loaded by every ADD (sys/files.ts says why).
import { exists, mkdir, readText, rename, unlink, writeText } from "../sys/files.ts";
import { join } from "../sys/paths.ts";
import { isErrno, type BpfFilterInfo, type Link, type Netlink } from "../kernel/index.ts";
import { BpfError, closeBpfFd, fdById, HostGwRoutesMap, loadPodRedirect, mapId, PlainPodsMap, progInfo, tcxAttach, tcxDetach, tcxProgIds, VerdictCounters } from "../kernel/bpf/index.ts";
import { closeFd, LOCK_EX, O_CREAT, O_RDONLY, openFd, sym } from "../sys/libc.ts";
import { safeJoin } from "../cni/names.ts";

/** The filter's name (and the program's): how mncni finds its filter on a device. */
export const FAST_PATH_FILTER = "mncni_pod_redir";
const FILTER_PRIORITY = 1;
const RECORD = ".mncni-fast-path.json";
const LOCK = ".mncni-fast-path.lock";

/** What the record file says: the objects' IDs and the program's tag (IDs restart at boot; the tag tells). */
export interface FastPathRecord {
  prog: number;
  tag: string;
  map: number;
  /** The verdict counters map (absent in a record of a build without them). */
  counters?: number;
  /** The host-gw routes map (absent in a record of a build without the cross-node fast path). */
  hostGw?: number;
  /** The underlay program the agent attached (absent until it does). */
  underlay?: { prog: number; tag: string };
}

export function fastPathDir(dataDir: string, network: string): string {
  return safeJoin(dataDir, network);
}

export function readRecord(dir: string): FastPathRecord | undefined {
  try {
    const r = JSON.parse(readText(join(dir, RECORD))) as Partial<FastPathRecord>;
    if (typeof r.prog === "number" && typeof r.map === "number" && typeof r.tag === "string") {
      const u = r.underlay;
      return {
        prog: r.prog, tag: r.tag, map: r.map, ...(typeof r.counters === "number" ? { counters: r.counters } : {}), ...(typeof r.hostGw === "number" ? { hostGw: r.hostGw } : {}),
        ...(u && typeof u.prog === "number" && typeof u.tag === "string" ? { underlay: { prog: u.prog, tag: u.tag } } : {}),
      };
    }
  } catch {
    // none, or not ours: as if none
  }
  return undefined;
}

export function writeRecord(dir: string, r: FastPathRecord): void {
  const tmp = join(dir, `${RECORD}.tmp${process.pid}`);
  writeText(tmp, JSON.stringify(r) + "\n");
  rename(tmp, join(dir, RECORD));
}

export function hasRecord(dir: string): boolean {
  return exists(join(dir, RECORD));
}

export function removeRecord(dir: string): boolean {
  try {
    unlink(join(dir, RECORD));
    return true;
  } catch {
    return false;
  }
}

/** The recorded program, open, when it is still the one recorded (tag and map); undefined otherwise. */
export function openRecordedProgram(rec: FastPathRecord | undefined): number | undefined {
  if (!rec) return undefined;
  let fd: number;
  try {
    fd = fdById("prog", rec.prog);
  } catch {
    return undefined;
  }
  try {
    const info = progInfo(fd);
    if (info.tag === rec.tag && info.mapIds.includes(rec.map)) return fd;
  } catch {
    // an ID of something else
  }
  closeBpfFd(fd);
  return undefined;
}

/** Runs fn holding the directory's fast-path lock (loads and the record change under it). */
export function withFastPathLock<T>(dir: string, fn: () => T): T {
  mkdir(dir, { recursive: true });
  const fd = openFd(join(dir, LOCK), O_RDONLY | O_CREAT, 0o600);
  try {
    if (sym.flock(fd, LOCK_EX) !== 0) throw new Error(`cannot lock ${join(dir, LOCK)}`);
    return fn();
  } finally {
    closeFd(fd);
  }
}

export interface FastPathObjects {
  progFd: number;
  /** The plain-pods map, open; only when asked for (the agent keeps it, the plugin does not). */
  map?: PlainPodsMap;
  /** The verdict counters, open, with the map (when the program has them). */
  counters?: VerdictCounters;
  /** The host-gw routes map, open, with the map (when the program has it). */
  hostGw?: HostGwRoutesMap;
  record: FastPathRecord;
  /** Loaded now (not found by the record). */
  loaded: boolean;
}

/** New maps and this build's program over them, recorded. Call under the lock. */
function loadNew(dir: string, keepMap: boolean): FastPathObjects {
  const map = PlainPodsMap.create();
  let counters: VerdictCounters | undefined;
  let hostGw: HostGwRoutesMap | undefined;
  try {
    counters = VerdictCounters.create();
    // Always with the host-gw routes map: empty (VXLAN, one node) it sends nothing across.
    hostGw = HostGwRoutesMap.create();
    const progFd = loadPodRedirect(map.fd, { counters: counters.fd, hostGw: hostGw.fd });
    const info = progInfo(progFd);
    const record = { prog: info.id, tag: info.tag, map: mapId(map.fd), counters: mapId(counters.fd), hostGw: mapId(hostGw.fd) };
    writeRecord(dir, record);
    if (!keepMap) {
      map.close();
      counters.close();
      hostGw.close();
    }
    return { progFd, record, loaded: true, ...(keepMap ? { map, counters, hostGw } : {}) };
  } catch (e) {
    map.close();
    counters?.close();
    hostGw?.close();
    throw e;
  }
}

/**
 * The node's program (and with `keepMap` its map), found by the record or loaded and recorded.
 * The caller closes what it gets (the objects live on while a filter or another holder has them).
 */
export function openFastPath(dir: string, o: { keepMap?: boolean } = {}): FastPathObjects {
  const found = (): FastPathObjects | undefined => {
    const rec = readRecord(dir);
    const progFd = openRecordedProgram(rec);
    if (progFd === undefined) return undefined;
    if (!o.keepMap) return { progFd, record: rec!, loaded: false };
    let map: PlainPodsMap | undefined;
    let counters: VerdictCounters | undefined;
    try {
      map = PlainPodsMap.adopt(fdById("map", rec!.map));
      counters = rec!.counters !== undefined ? VerdictCounters.adopt(fdById("map", rec!.counters)) : undefined;
      const hostGw = rec!.hostGw !== undefined ? HostGwRoutesMap.adopt(fdById("map", rec!.hostGw)) : undefined;
      return { progFd, record: rec!, loaded: false, map, ...(counters ? { counters } : {}), ...(hostGw ? { hostGw } : {}) };
    } catch {
      map?.close();
      counters?.close();
      closeBpfFd(progFd);
      return undefined;
    }
  };
  return found() ?? withFastPathLock(dir, () => found() ?? loadNew(dir, o.keepMap === true));
}

/**
 * Replaces the recorded program with this build's over the same map (an agent of another build
 * adopting the objects): returns the new program's fd and record, or undefined when the recorded
 * one is already this build's. Call under the lock.
 */
export function reloadOver(dir: string, current: FastPathObjects & { map: PlainPodsMap }): FastPathObjects | undefined {
  // A record of a build without counters (or the host-gw routes map) gets them now.
  const counters = current.counters ?? VerdictCounters.create();
  const hostGw = current.hostGw ?? HostGwRoutesMap.create();
  const progFd = loadPodRedirect(current.map.fd, { counters: counters.fd, hostGw: hostGw.fd });
  const info = progInfo(progFd);
  if (info.tag === current.record.tag && current.counters && current.hostGw) {
    closeBpfFd(progFd);
    return undefined;
  }
  // The underlay program (over the old maps) is the agent's to replace: not carried over.
  const record = { prog: info.id, tag: info.tag, map: current.record.map, counters: mapId(counters.fd), hostGw: mapId(hostGw.fd) };
  writeRecord(dir, record);
  return { progFd, record, loaded: true, map: current.map, counters, hostGw };
}

/**
 * Takes addresses out of the plain-pods map (a DEL's, and an ADD's before the pod is wired): an
 * entry left for an address's previous holder names a device that is gone, or another pod's,
 * until the agent's next pass. Nothing to do when no map is recorded or left.
 */
export function forgetPlain(dir: string, addrs: readonly string[]): void {
  if (!addrs.length) return;
  const rec = readRecord(dir);
  const progFd = openRecordedProgram(rec);
  if (progFd === undefined) return;
  let map: PlainPodsMap | undefined;
  try {
    // The recorded program still holds it: the ID is the map's, not a reused one.
    map = PlainPodsMap.adopt(fdById("map", rec!.map));
    for (const a of addrs) map.delete(a);
  } finally {
    map?.close();
    closeBpfFd(progFd);
  }
}

/** Why a device cannot carry the fast path's filter; undefined when it can. */
export function attachProblem(host: Netlink, dev: Link): string | undefined {
  if (!dev.mac) return `"${dev.name}" has no MAC (netkit): the program works on Ethernet frames`;
  const kinds = host.qdiscs(dev.index).map((q) => q.kind);
  // Bandwidth shaping: its ingress qdisc holds clsact's place, and a redirect would skip both tbfs.
  if (kinds.includes("ingress") || kinds.includes("tbf")) return `"${dev.name}" is shaped (bandwidth): redirected packets would skip its qdiscs`;
  return undefined;
}

/**
 * Where a program of ours sits on a device: tcx (kernel 6.6+: no qdisc or classifier on the
 * packet's way, which makes the hook itself free where clsact's costs ~0.1 µs a packet;
 * docs/fast-path.md) or, on a kernel without tcx (or left by a build before it), a clsact filter.
 */
export type FastPathHook = "tcx" | "clsact";

export interface AttachedFastPath {
  progId: number;
  hook: FastPathHook;
  /** a clsact filter's priority */
  priority?: number;
}

/** How one of our programs is attached: its name, its clsact priority, whether the device's clsact is ours alone. */
export interface HookSpec {
  name: string;
  priority: number;
  /** Pods' devices: nothing else uses clsact there, the qdisc goes with our filter. The underlay: only our filter goes. */
  ownsClsact: boolean;
}

/** The pod program on a pod's host-side device. */
export const POD_HOOK: HookSpec = { name: FAST_PATH_FILTER, priority: FILTER_PRIORITY, ownsClsact: true };

/** Program names by ID (an ID is not reused while its program lives): a pass asks for every pod's device. */
const progNames = new Map<number, string>();

function progName(id: number): string | undefined {
  const known = progNames.get(id);
  if (known !== undefined) return known;
  let fd: number;
  try {
    fd = fdById("prog", id);
  } catch {
    return undefined; // gone since the device was listed
  }
  try {
    const { name } = progInfo(fd);
    if (progNames.size >= 4096) progNames.clear();
    progNames.set(id, name);
    return name;
  } finally {
    closeBpfFd(fd);
  }
}

const EINVAL = 22;
const gone = (e: unknown) => e instanceof BpfError && (e.code === "ENOENT" || e.code === "ENODEV");

/**
 * Our program of that name on a device (its tcx ingress, else a clsact filter), if any.
 * `clsact`: whether the device has a clsact qdisc, when the caller knows (spares a dump per device).
 */
export function attachedProgram(host: Netlink, index: number, spec: HookSpec, o: { clsact?: boolean } = {}): AttachedFastPath | undefined {
  let ids: number[];
  try {
    ids = host.within(() => tcxProgIds(index));
  } catch (e) {
    if (gone(e)) return undefined;
    throw e;
  }
  for (const id of ids) if (progName(id) === spec.name) return { progId: id, hook: "tcx" };
  if (o.clsact === false) return undefined;
  const f = host.bpfFilters(index).find((x) => x.name === spec.name);
  return f ? { progId: f.progId, hook: "clsact", priority: f.priority } : undefined;
}

/**
 * Attaches a program to a device's tcx ingress, in place of ours there (never a moment without
 * one), and takes a clsact filter of ours off (an older build's); on a kernel without tcx, to its
 * clsact ingress as a direct-action filter. After any tcx programs of others (appended): it
 * hands them what it does not redirect (TC_ACT_UNSPEC), and so on to clsact filters and the stack.
 */
export function attachProgram(host: Netlink, index: number, progFd: number, spec: HookSpec): void {
  const current = attachedProgram(host, index, spec);
  if (current?.hook === "tcx") {
    if (current.progId === progInfo(progFd).id) return;
    let old: number | undefined;
    try {
      old = fdById("prog", current.progId);
    } catch {
      // detached meanwhile: attach anew below
    }
    if (old !== undefined) {
      try {
        host.within(() => tcxAttach(index, progFd, old));
        return;
      } finally {
        closeBpfFd(old);
      }
    }
  }
  try {
    host.within(() => tcxAttach(index, progFd));
  } catch (e) {
    // EINVAL: no tcx in this kernel (an unknown attach type).
    if (!(e instanceof BpfError && e.errno === EINVAL)) throw e;
    try {
      host.addClsact(index);
    } catch (e2) {
      if (!isErrno(e2, "EEXIST")) throw e2;
    }
    host.addBpfFilter({ index, progFd, name: spec.name, priority: spec.priority });
    return;
  }
  if (current?.hook === "clsact") removeClsactFilter(host, index, spec, current.priority);
}

/**
 * Takes our program of that name off a device (tcx, and a clsact filter of ours with, on a pod's
 * device, the clsact qdisc we made for it); gone devices are fine. Nothing else on the device
 * goes: on tcx we made no qdisc, and one there is someone else's (a chained bandwidth plugin's).
 */
export function detachProgram(host: Netlink, index: number, spec: HookSpec): void {
  let ids: number[] = [];
  try {
    ids = host.within(() => tcxProgIds(index));
  } catch (e) {
    if (!gone(e)) throw e;
  }
  for (const id of ids) {
    if (progName(id) !== spec.name) continue;
    let fd: number;
    try {
      fd = fdById("prog", id);
    } catch {
      continue;
    }
    try {
      host.within(() => tcxDetach(index, fd));
    } catch (e) {
      if (!gone(e)) throw e;
    } finally {
      closeBpfFd(fd);
    }
  }
  let filters: BpfFilterInfo[] = [];
  try {
    filters = host.bpfFilters(index).filter((f) => f.name === spec.name);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENODEV", "EINVAL")) throw e;
  }
  for (const f of filters) removeClsactFilter(host, index, spec, f.priority);
}

function removeClsactFilter(host: Netlink, index: number, spec: HookSpec, priority = spec.priority): void {
  try {
    if (spec.ownsClsact) host.delQdisc(index, 0xfffffff1);
    else host.delIngressFilter(index, priority);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENODEV", "EINVAL")) throw e;
  }
}

/** The pod program on a pod's device, if any. */
export function fastPathFilter(host: Netlink, index: number, o: { clsact?: boolean } = {}): AttachedFastPath | undefined {
  return attachedProgram(host, index, POD_HOOK, o);
}

/** Attaches the pod program to a pod's device (see attachProgram). */
export function attachFastPath(host: Netlink, index: number, progFd: number): void {
  attachProgram(host, index, progFd, POD_HOOK);
}

/** Takes the pod program off a pod's device (see detachProgram); gone devices are fine. */
export function detachFastPath(host: Netlink, index: number): void {
  detachProgram(host, index, POD_HOOK);
}
