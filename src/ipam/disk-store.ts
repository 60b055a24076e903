// host-local's on-disk format: dataDir/<network>/<ip> holding "<containerId>\r\n<ifname>",
// last_reserved_ip.<rangeSet>, and a `lock` file taken with flock(2). Unlike host-local,
// a reservation file is never visible half-written: its content goes to a temp file first
// which is then link(2)ed to the address name (atomic, EEXIST when taken). See README.md.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { networkNameProblem, safeJoin } from "../cni/names.ts";
import { exists, link, mkdir, readDir, readText, removeTree, rename, unlink, writeText } from "../sys/files.ts";
import { closeFd, errno, errnoName, LOCK_EX, O_CREAT, O_RDONLY, openFd, sym, type SysError } from "../sys/libc.ts";
import { formatIp, parseIp, sameIp, type Ip } from "./ip-bigint.ts";
import { listingCache, type DirMemory } from "./listing-cache.ts";
import { ownedBy, type AttachmentKey, type Listing, type Reservation, type Store } from "./store.ts";

const LINE_BREAK = "\r\n";
const LOCK_FILE = "lock";
const LAST_RESERVED_PREFIX = "last_reserved_ip.";
/** Temp files exist only while their writer holds the lock; any seen under the lock are stale. */
const TEMP_PREFIX = ".mncni-tmp.";
/**
 * Flow marks (README.md): FLOW_DIR/<address> exists from the moment the address is reserved
 * until a DEL that forgot its conntrack flows released it. A subdirectory, so marking does
 * not disturb the watch on the reservations (listing-cache.ts), and host-local ignores it.
 */
const FLOW_DIR = ".mncni-flows";
const EINTR = 4;
const EWOULDBLOCK = 11;
const LOCK_NB = 4;

/** undefined: wait for a lock as long as it takes (a plugin process); else ms (see resident.ts). */
let lockWaitMs: number | undefined;
/** Told the lock file of every lock given up on (see resident.ts). */
let onBusy: ((lockFile: string) => void) | undefined;

export function setLockWait(ms: number | undefined, busy?: (lockFile: string) => void): void {
  lockWaitMs = ms;
  onBusy = busy;
}

/**
 * Takes the flock, waiting at most lockWaitMs when set: non-blocking attempts, the pause
 * between them growing from 1 ms to 20 ms. Returns the errno that stopped it, 0 when taken,
 * or EWOULDBLOCK after the deadline.
 */
function flockWithin(fd: number): number {
  const deadline = lockWaitMs === undefined ? undefined : performance.now() + lockWaitMs;
  for (let pause = 1; ; ) {
    if (sym.flock(fd, deadline === undefined ? LOCK_EX : LOCK_EX | LOCK_NB) === 0) return 0;
    const err = errno();
    if (err === EINTR) continue;
    if (err !== EWOULDBLOCK || deadline === undefined) return err;
    if (performance.now() >= deadline) return EWOULDBLOCK;
    Bun.sleepSync(pause);
    pause = Math.min(pause * 2, 20);
  }
}

const codeOf = (e: unknown) => (e as SysError | undefined)?.code;

function ioError(what: string, e: unknown): CniError {
  return new CniError(ErrorCode.IOFailure, `cannot ${what}: ${(e as Error).message}`, "", { cause: e });
}

/** Parses a reservation file; host-local trims whitespace around the whole content. */
function parseReservation(ip: Ip, content: string): Reservation | undefined {
  const text = content.trim();
  if (text === "") return undefined;
  const nl = text.indexOf("\n");
  if (nl < 0) return { ip, containerId: text };
  return { ip, containerId: text.slice(0, nl).trim(), ifname: text.slice(nl + 1).trim() };
}

function formatReservation(key: AttachmentKey): string {
  return key.containerId.trim() + LINE_BREAK + key.ifname;
}

export class DiskStore implements Store {
  readonly dir: string;
  private fd = -1;
  /** In a resident process: what it remembers of the directory, valid while locked. */
  private memory?: DirMemory;
  /** Addresses reserved by this store, and whether a previous holder's flows may remain on each. */
  private readonly mayRemain = new Map<string, boolean>();

  constructor(dataDir: string, network: string) {
    const why = networkNameProblem(network);
    if (why) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot use network name "${network}" for IPAM state: ${why}`);
    this.dir = safeJoin(dataDir, network);
  }

  /** False before the first reservation of this network, so DEL/CHECK need not create it. */
  exists(): boolean {
    return exists(this.dir);
  }

  lock(): void {
    if (this.fd >= 0) throw new Error(`lock of ${this.dir} taken twice`);
    const path = this.path(LOCK_FILE);
    let fd: number;
    try {
      try {
        fd = openFd(path, O_RDONLY | O_CREAT, 0o644);
      } catch (e) {
        if ((e as SysError).code !== "ENOENT") throw e;
        mkdir(this.dir, { recursive: true, mode: 0o755 }); // the network's first reservation
        fd = openFd(path, O_RDONLY | O_CREAT, 0o644);
      }
    } catch (e) {
      throw ioError(`open IPAM lock "${path}"`, e);
    }
    const err = flockWithin(fd);
    if (err !== 0) {
      closeFd(fd);
      if (err === EWOULDBLOCK) {
        onBusy?.(path);
        throw new CniError(ErrorCode.TryAgainLater, `cannot lock IPAM state "${path}": held by another process; try again`);
      }
      throw new CniError(ErrorCode.IOFailure, `cannot lock IPAM state "${path}": flock: ${errnoName(err)}`);
    }
    this.fd = fd;
    // Temp files are left only by a writer that died; that writer's changes also made the
    // cache forget the directory, so a remembered directory has none.
    this.memory = listingCache()?.recall(this.dir);
    if (!this.memory) this.removeStaleTemps();
  }

  unlock(): void {
    if (this.fd >= 0) {
      listingCache()?.settle(this.dir);
      // Closing the only descriptor of the open file description drops the flock.
      closeFd(this.fd);
    }
    this.fd = -1;
    this.memory = undefined;
  }

  reserve(ip: Ip, key: AttachmentKey): boolean {
    const tmp = this.writeTemp(formatReservation(key));
    try {
      link(tmp, this.path(formatIp(ip)));
      this.memory?.reservations.push({ ip, containerId: key.containerId.trim(), ifname: key.ifname });
      this.mayRemain.set(formatIp(ip), this.markHeld(formatIp(ip)));
      return true;
    } catch (e) {
      if (codeOf(e) === "EEXIST") return false;
      throw ioError(`reserve IP "${formatIp(ip)}" in "${this.dir}"`, e);
    } finally {
      this.unlinkQuietly(tmp);
    }
  }

  release(ip: Ip): boolean {
    try {
      unlink(this.path(formatIp(ip)));
      if (this.memory) this.memory.reservations = this.memory.reservations.filter((r) => !sameIp(r.ip, ip));
      return true;
    } catch (e) {
      if (codeOf(e) === "ENOENT") return false;
      throw ioError(`release IP "${formatIp(ip)}" in "${this.dir}"`, e);
    }
  }

  releaseByKey(key: AttachmentKey): Ip[] {
    const owned = this.list().reservations.filter((r) => ownedBy(r, key));
    return owned.filter((r) => this.release(r.ip)).map((r) => r.ip);
  }

  list(): Listing {
    if (this.memory) return { reservations: [...this.memory.reservations], unreadable: [] };
    const cache = this.fd >= 0 ? listingCache() : undefined;
    // Watch before reading: a change made while reading is then seen too.
    let memory: DirMemory | undefined;
    try {
      memory = cache?.watch(this.dir);
    } catch {
      memory = undefined; // no watch (e.g. inotify limits): read every time, as a plugin does
    }
    const out = this.readListing();
    if (memory && out.unreadable.length === 0) {
      memory.reservations = [...out.reservations];
      this.memory = memory;
    } else if (memory) cache!.forget(this.dir);
    return out;
  }

  private readListing(): Listing {
    const out: Listing = { reservations: [], unreadable: [] };
    let names: string[];
    try {
      names = readDir(this.dir);
    } catch (e) {
      if (codeOf(e) === "ENOENT") return out;
      throw ioError(`list IPAM directory "${this.dir}"`, e);
    }
    for (const name of names) {
      const ip = parseIp(name);
      // Only canonical names are reservations (host-local writes Go's canonical text).
      if (!ip || formatIp(ip) !== name) continue;
      try {
        const r = parseReservation(ip, readText(this.path(name)));
        if (r) out.reservations.push(r);
        else out.unreadable.push({ ip, error: `reservation file "${this.path(name)}" is empty` });
      } catch (e) {
        if (codeOf(e) === "ENOENT") continue;
        out.unreadable.push({ ip, error: `cannot read reservation file "${this.path(name)}": ${(e as Error).message}` });
      }
    }
    return out;
  }

  lastReserved(rangeSet: number): Ip | undefined {
    if (this.memory?.lastReserved.has(rangeSet)) return this.memory.lastReserved.get(rangeSet);
    let ip: Ip | undefined;
    try {
      ip = parseIp(readText(this.path(LAST_RESERVED_PREFIX + rangeSet)).trim());
    } catch {
      // Only round robin is lost without it, exactly as host-local tolerates.
      ip = undefined;
    }
    this.memory?.lastReserved.set(rangeSet, ip);
    return ip;
  }

  setLastReserved(rangeSet: number, ip: Ip): void {
    // Rewritten in place: it is a round-robin hint, and a crash that leaves it empty or with
    // the old address's tail only restarts round robin elsewhere (an address outside the
    // range, or none, restarts it at the range's start). Replacing it by rename(2) cost ~250 µs
    // per ADD on ext4, which flushes the new file's data on a rename over an existing file;
    // truncating it to zero first (host-local's way) ~150-500 µs, flushed likewise on close.
    try {
      writeText(this.path(LAST_RESERVED_PREFIX + rangeSet), formatIp(ip), { mode: 0o644, inPlace: true });
      this.memory?.lastReserved.set(rangeSet, ip);
    } catch (e) {
      throw ioError(`record the last reserved IP in "${this.dir}"`, e);
    }
  }

  checkWritable(): void {
    this.unlinkQuietly(this.writeTemp("probe"));
  }

  flowsMayRemain(ip: Ip): boolean {
    return this.mayRemain.get(formatIp(ip)) ?? true;
  }

  /**
   * Under the lock, the address `name` just reserved: marks it held, and returns whether it
   * was marked already (a holder no DEL forgot) or the marks' history is unknown.
   */
  private markHeld(name: string): boolean {
    try {
      writeText(this.path(FLOW_DIR, name), "", { exclusive: true, mode: 0o644 });
      return false;
    } catch (e) {
      if (codeOf(e) === "EEXIST") return true;
      if (codeOf(e) !== "ENOENT") this.dropFlowMarks(e);
    }
    // No marks at all: a new network, state written before marks existed, or marks dropped.
    // From now on they are kept, starting with a mark for every current holder (this one
    // too), written aside and renamed in place: a kill midway leaves no partial set.
    const aside = this.path(`${TEMP_PREFIX}flows`);
    try {
      removeTree(aside);
      mkdir(aside, { mode: 0o755 });
      for (const r of this.list().reservations) writeText(safeJoin(aside, formatIp(r.ip)), "", { mode: 0o644 });
      rename(aside, this.path(FLOW_DIR));
    } catch (e) {
      removeTree(aside);
      this.dropFlowMarks(e);
    }
    return true;
  }

  /** A mark that could not be written would make its address look forgotten: no marks, no trust. */
  private dropFlowMarks(cause: unknown): void {
    try {
      removeTree(this.path(FLOW_DIR));
    } catch (e) {
      throw ioError(`record conntrack flow marks in "${this.dir}" (${(cause as Error).message})`, e);
    }
  }

  /**
   * After a DEL forgot the flows of `ips` and released them: their marks go, except for an
   * address reserved again meanwhile (its mark is its new holder's). Under the lock (tried
   * once in a resident process): when it is not had, the marks stay and the next holders
   * forget, which is always safe.
   */
  flowsForgotten(ips: readonly Ip[]): void {
    if (ips.length === 0 || !exists(this.path(FLOW_DIR))) return;
    let fd: number;
    try {
      fd = openFd(this.path(LOCK_FILE), O_RDONLY);
    } catch {
      return;
    }
    try {
      if (flockWithin(fd) !== 0) return;
      for (const ip of ips) {
        const name = formatIp(ip);
        if (!exists(this.path(name))) this.unlinkQuietly(this.path(FLOW_DIR, name));
      }
    } finally {
      closeFd(fd);
    }
  }

  private path(...names: string[]): string {
    return safeJoin(this.dir, ...names);
  }

  private writeTemp(content: string): string {
    const tmp = this.path(`${TEMP_PREFIX}${process.pid}.${Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex")}`);
    try {
      writeText(tmp, content, { exclusive: true, mode: 0o644 });
    } catch (e) {
      this.unlinkQuietly(tmp);
      throw ioError(`write to IPAM directory "${this.dir}"`, e);
    }
    return tmp;
  }

  private removeStaleTemps(): void {
    let names: string[] = [];
    try {
      names = readDir(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(TEMP_PREFIX)) removeTree(this.path(n));
  }

  private unlinkQuietly(path: string): void {
    try {
      unlink(path);
    } catch {
      // Already gone, or left for removeStaleTemps() of the next locked operation.
    }
  }
}
