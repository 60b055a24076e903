// bpf(2) over bun:ffi: load a program, create and use a hash map, and find objects by their
// IDs (bpffs is not mounted on every node: a program attached to a device is found again
// through the filter that holds it, and its maps through the program's info).
// union bpf_attr is laid out per command below; the kernel wants unused bytes zero.
import { ptr } from "bun:ffi";
// Not node:fs: the plugin loads this module on every ADD (sys/files.ts says why).
import { readText } from "../../sys/files.ts";
import { errno, errnoName, sym } from "../../sys/libc.ts";

/** bpf(2)'s syscall number: no libc wrapper, and it differs per architecture. */
const SYS_BPF = ({ x64: 321, arm64: 280 } as Record<string, number>)[process.arch];
const CMD = {
  MAP_CREATE: 0, MAP_LOOKUP_ELEM: 1, MAP_UPDATE_ELEM: 2, MAP_DELETE_ELEM: 3, MAP_GET_NEXT_KEY: 4,
  PROG_LOAD: 5, PROG_ATTACH: 8, PROG_DETACH: 9, PROG_TEST_RUN: 10, PROG_GET_FD_BY_ID: 13, MAP_GET_FD_BY_ID: 14, OBJ_GET_INFO_BY_FD: 15, PROG_QUERY: 16,
} as const;
export const PROG_TYPE = { SCHED_CLS: 3 } as const;
export const MAP_TYPE = { HASH: 1, PERCPU_ARRAY: 6, LPM_TRIE: 11 } as const;
/** BPF_F_NO_PREALLOC: required by LPM tries. */
export const MAP_F_NO_PREALLOC = 1;
/** Update flags: BPF_ANY (create or replace). */
const BPF_ANY = 0;
const ATTR_SIZE = 144;
const LOG_SIZE = 1 << 20;
const ENOENT = 2;
const EINVAL = 22;

/** A failed bpf() call: the command, errno, and for a refused program the verifier's log. */
export class BpfError extends Error {
  constructor(readonly op: string, readonly errno: number, readonly log = "") {
    super(`${op}: ${errnoName(errno)}${log ? `\n${log.trimEnd()}` : ""}`);
    this.name = "BpfError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

function bpf(cmd: number, attr: Buffer, op: string, log?: () => string): number {
  if (SYS_BPF === undefined) throw new BpfError(`${op} (no bpf syscall number for ${process.arch})`, 38 /* ENOSYS */);
  const r = Number(sym.syscall(SYS_BPF, cmd, attr, ATTR_SIZE));
  if (r < 0) {
    const e = errno();
    throw new BpfError(op, e, log?.() ?? "");
  }
  return r;
}

function name16(attr: Buffer, at: number, name: string): void {
  // Object names: at most 15 characters of [A-Za-z0-9_.].
  attr.write(name.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 15), at, "latin1");
}

export interface ProgLoad {
  type: number;
  insns: Uint8Array;
  license: string;
  name: string;
}

/**
 * Loads a program and returns its fd. A refusal is loaded again with the verifier's log on
 * (as libbpf does: a log requested up front is written for every load and costs time) and
 * the error carries that log.
 */
export function progLoad(p: ProgLoad): number {
  const license = Buffer.from(`${p.license}\0`);
  const attr = (logBuf?: Buffer): Buffer => {
    const a = Buffer.alloc(ATTR_SIZE);
    a.writeUInt32LE(p.type, 0);
    a.writeUInt32LE(p.insns.length / 8, 4);
    a.writeBigUInt64LE(BigInt(ptr(p.insns)), 8);
    a.writeBigUInt64LE(BigInt(ptr(license)), 16);
    if (logBuf) {
      a.writeUInt32LE(1, 24);
      a.writeUInt32LE(logBuf.length, 28);
      a.writeBigUInt64LE(BigInt(ptr(logBuf)), 32);
    }
    name16(a, 48, p.name);
    return a;
  };
  const op = `load bpf program ${p.name}`;
  try {
    return bpf(CMD.PROG_LOAD, attr(), op);
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    const logBuf = Buffer.alloc(LOG_SIZE);
    // ENOSPC from the second load means only that the log did not fit: report the first errno.
    try {
      return bpf(CMD.PROG_LOAD, attr(logBuf), op);
    } catch {
      throw new BpfError(op, e.errno, logBuf.toString("utf8", 0, Math.max(0, logBuf.indexOf(0))));
    }
  }
}

export interface MapCreate {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  name: string;
  flags?: number;
}

export function mapCreate(m: MapCreate): number {
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(m.type, 0);
  attr.writeUInt32LE(m.keySize, 4);
  attr.writeUInt32LE(m.valueSize, 8);
  attr.writeUInt32LE(m.maxEntries, 12);
  attr.writeUInt32LE(m.flags ?? 0, 16);
  name16(attr, 28, m.name);
  return bpf(CMD.MAP_CREATE, attr, `create bpf map ${m.name}`);
}

function elemAttr(fd: number, key: Uint8Array, value?: Uint8Array, flags = 0): Buffer {
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(fd, 0);
  attr.writeBigUInt64LE(BigInt(ptr(key)), 8);
  if (value) attr.writeBigUInt64LE(BigInt(ptr(value)), 16);
  attr.writeBigUInt64LE(BigInt(flags), 24);
  return attr;
}

export function mapUpdate(fd: number, key: Uint8Array, value: Uint8Array): void {
  bpf(CMD.MAP_UPDATE_ELEM, elemAttr(fd, key, value, BPF_ANY), "update bpf map element");
}

/** Deletes an element; false when it was not there. */
export function mapDelete(fd: number, key: Uint8Array): boolean {
  try {
    bpf(CMD.MAP_DELETE_ELEM, elemAttr(fd, key), "delete bpf map element");
    return true;
  } catch (e) {
    if (e instanceof BpfError && e.errno === ENOENT) return false;
    throw e;
  }
}

/** The value under key, or undefined. */
export function mapLookup(fd: number, key: Uint8Array, valueSize: number): Uint8Array | undefined {
  const value = new Uint8Array(valueSize);
  try {
    bpf(CMD.MAP_LOOKUP_ELEM, elemAttr(fd, key, value), "look up bpf map element");
    return value;
  } catch (e) {
    if (e instanceof BpfError && e.errno === ENOENT) return undefined;
    throw e;
  }
}

/** Every key of a map (a snapshot: keys added meanwhile may be missed). */
export function mapKeys(fd: number, keySize: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev: Uint8Array | undefined;
  for (;;) {
    const next = new Uint8Array(keySize);
    const attr = Buffer.alloc(ATTR_SIZE);
    attr.writeUInt32LE(fd, 0);
    if (prev) attr.writeBigUInt64LE(BigInt(ptr(prev)), 8);
    attr.writeBigUInt64LE(BigInt(ptr(next)), 16);
    try {
      bpf(CMD.MAP_GET_NEXT_KEY, attr, "list bpf map keys");
    } catch (e) {
      if (e instanceof BpfError && e.errno === ENOENT) return out;
      throw e;
    }
    out.push(next);
    prev = next;
  }
}

export interface ProgInfo {
  id: number;
  tag: string;
  mapIds: number[];
  /** the name given at load (at most 15 characters) */
  name: string;
}

/** A program's ID, tag and the IDs of the maps it uses. */
export function progInfo(fd: number): ProgInfo {
  // struct bpf_prog_info: type @0, id @4, tag[8] @8, ..., nr_map_ids @52, map_ids (u64) @56, name[16] @64.
  const info = Buffer.alloc(256);
  const mapIds = new Uint32Array(16);
  info.writeUInt32LE(mapIds.length, 52);
  info.writeBigUInt64LE(BigInt(ptr(mapIds)), 56);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(fd, 0);
  attr.writeUInt32LE(info.length, 4);
  attr.writeBigUInt64LE(BigInt(ptr(info)), 8);
  bpf(CMD.OBJ_GET_INFO_BY_FD, attr, "read bpf program info");
  const n = Math.min(info.readUInt32LE(52), mapIds.length);
  const name = info.subarray(64, 80);
  return { id: info.readUInt32LE(4), tag: info.toString("hex", 8, 16), mapIds: [...mapIds.subarray(0, n)], name: name.toString("latin1", 0, Math.max(0, name.indexOf(0))) };
}

/** A map's ID (struct bpf_map_info: type @0, id @4). */
export function mapId(fd: number): number {
  const info = Buffer.alloc(96);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(fd, 0);
  attr.writeUInt32LE(info.length, 4);
  attr.writeBigUInt64LE(BigInt(ptr(info)), 8);
  bpf(CMD.OBJ_GET_INFO_BY_FD, attr, "read bpf map info");
  return info.readUInt32LE(4);
}

/** An fd for a program or map by its ID (ENOENT once the last holder let it go). */
export function fdById(kind: "prog" | "map", id: number): number {
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(id, 0);
  return bpf(kind === "prog" ? CMD.PROG_GET_FD_BY_ID : CMD.MAP_GET_FD_BY_ID, attr, `open bpf ${kind} ${id}`);
}

/**
 * How many CPUs a per-CPU map holds a value for (the kernel's possible CPUs, not the online
 * ones): a per-CPU lookup from user space writes that many values, each rounded up to 8 bytes.
 */
export function possibleCpus(): number {
  const text = readText("/sys/devices/system/cpu/possible").trim();
  let last = 0;
  for (const range of text.split(",")) last = Math.max(last, ...range.split("-").map(Number));
  return last + 1;
}

/** enum bpf_attach_type: tcx's ingress hook (kernel 6.6+). */
const BPF_TCX_INGRESS = 46;
/** BPF_PROG_ATTACH flag: replace the program given by replace_bpf_fd, in place. */
const BPF_F_REPLACE = 1 << 2;

function tcxAttr(ifindex: number, progFd: number): Buffer {
  // BPF_PROG_ATTACH/DETACH: target_ifindex @0, attach_bpf_fd @4, attach_type @8, attach_flags @12, replace_bpf_fd @16.
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(ifindex, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(BPF_TCX_INGRESS, 8);
  return attr;
}

/**
 * Attaches a SCHED_CLS program to a device's tcx ingress: no qdisc and no classifier on the
 * packet's way, which on this machine makes the hook itself free where clsact's costs ~0.1 µs
 * a packet (bench/tc-hook-cost.ts). `replaceFd`: swap that attached program for this one in
 * place (no moment without a program). The device is looked up in the calling thread's
 * namespace. A kernel without tcx refuses with EINVAL.
 */
export function tcxAttach(ifindex: number, progFd: number, replaceFd?: number): void {
  const attr = tcxAttr(ifindex, progFd);
  if (replaceFd !== undefined) {
    attr.writeUInt32LE(BPF_F_REPLACE, 12);
    attr.writeUInt32LE(replaceFd, 16);
  }
  bpf(CMD.PROG_ATTACH, attr, `attach bpf program to tcx ingress of link ${ifindex}`);
}

export function tcxDetach(ifindex: number, progFd: number): void {
  bpf(CMD.PROG_DETACH, tcxAttr(ifindex, progFd), `detach bpf program from tcx ingress of link ${ifindex}`);
}

/** The IDs of the programs on a device's tcx ingress, in run order; none on a kernel without tcx. */
export function tcxProgIds(ifindex: number): number[] {
  // BPF_PROG_QUERY: target_ifindex @0, attach_type @4, prog_ids @16, prog_cnt @24.
  const ids = new Uint32Array(64);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(ifindex, 0);
  attr.writeUInt32LE(BPF_TCX_INGRESS, 4);
  attr.writeBigUInt64LE(BigInt(ptr(ids)), 16);
  attr.writeUInt32LE(ids.length, 24);
  try {
    bpf(CMD.PROG_QUERY, attr, `list tcx ingress programs of link ${ifindex}`);
  } catch (e) {
    if (e instanceof BpfError && e.errno === EINVAL) return [];
    throw e;
  }
  return [...ids.subarray(0, Math.min(attr.readUInt32LE(24), ids.length))];
}

export function closeBpfFd(fd: number): void {
  sym.close(fd);
}

export interface TestRun {
  /** the program's return value */
  retval: number;
  /** the packet as the program left it */
  data: Uint8Array;
  /** the kernel's average time of one run, ns (of `repeat` runs) */
  duration: number;
}

/**
 * Runs a SCHED_CLS program once on a packet (BPF_PROG_TEST_RUN), as if it had arrived on
 * the device `ifindex` of the calling thread's namespace: the kernel's own check of what a
 * program does to a packet, with nothing sent. `gsoSize` makes it a GSO packet of segments
 * that size (what a pod's TCP sends over veth); `repeat` runs it that many times (the result
 * is the last run's, the duration their average: what a program costs per packet).
 */
export function progTestRun(fd: number, packet: Uint8Array, ifindex: number, o: { gsoSize?: number; repeat?: number } = {}): TestRun {
  const out = new Uint8Array(packet.length + 256);
  // struct __sk_buff as input: ifindex (@40) and, for a GSO packet, gso_size (@176).
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(ifindex, 40);
  ctx.writeUInt32LE(o.gsoSize ?? 0, 176);
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(fd, 0);
  attr.writeUInt32LE(packet.length, 8);
  attr.writeUInt32LE(out.length, 12);
  attr.writeBigUInt64LE(BigInt(ptr(packet)), 16);
  attr.writeBigUInt64LE(BigInt(ptr(out)), 24);
  attr.writeUInt32LE(o.repeat ?? 1, 32);
  attr.writeUInt32LE(ctx.length, 40);
  attr.writeBigUInt64LE(BigInt(ptr(ctx)), 48);
  bpf(CMD.PROG_TEST_RUN, attr, "test-run bpf program");
  return { retval: attr.readUInt32LE(4), data: out.slice(0, attr.readUInt32LE(12)), duration: attr.readUInt32LE(36) };
}
