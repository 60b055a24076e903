// What a resident process (the CNI server) remembers of IPAM directories, so an operation
// under the lock need not re-read every reservation file. The memory is trusted only while
// the kernel reports no change to the directory by anyone else: an inotify watch per
// directory, drained of this process's own changes before each unlock. Any event it did
// not cause (another process, an admin, a queue overflow) drops what it remembered and the
// next operation reads the directory again. A plugin process never uses it (one call each).
//
// Directories are told apart by device and inode, as inotify does: two spellings of one
// directory (a symlink, /var/run and /run) share one watch, so they must share one memory,
// or a change made through one spelling would leave the other's memory stale.
import { stat } from "../sys/files.ts";
import { closeFd, cstr, errno, sym, SysError } from "../sys/libc.ts";
import type { Ip } from "./ip-bigint.ts";
import type { Reservation } from "./store.ts";

const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;
const EAGAIN = 11;
// Anything that changes the directory's entries or a file in it, or the directory itself.
const IN_MODIFY = 0x2;
const IN_ATTRIB = 0x4;
const IN_CLOSE_WRITE = 0x8;
const IN_MOVED_FROM = 0x40;
const IN_MOVED_TO = 0x80;
const IN_CREATE = 0x100;
const IN_DELETE = 0x200;
const IN_DELETE_SELF = 0x400;
const IN_MOVE_SELF = 0x800;
const WATCH_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF;

/** What is remembered of one directory: its reservations and last-reserved addresses. */
export interface DirMemory {
  reservations: Reservation[];
  lastReserved: Map<number, Ip | undefined>;
}

class ListingCache {
  /** By directory identity (see dirKey). */
  private readonly dirs = new Map<string, { wd: number; memory: DirMemory }>();
  private readonly buf = Buffer.alloc(64 * 1024);
  /** Operations served from memory, and full reads of a directory (for tests and metrics). */
  readonly stats = { recalled: 0, read: 0 };

  private constructor(private readonly fd: number) {}

  static open(): ListingCache {
    const fd = sym.inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) throw new SysError("inotify_init1", errno());
    return new ListingCache(fd);
  }

  /** Under the directory's lock: what is remembered of it, if nobody changed it since. */
  recall(dir: string): DirMemory | undefined {
    this.consume(undefined);
    const key = dirKey(dir);
    const memory = key === undefined ? undefined : this.dirs.get(key)?.memory;
    if (memory) this.stats.recalled++;
    return memory;
  }

  /**
   * Under the lock, before reading the directory: watch it, so a change from now on is seen.
   * Returns the memory to fill (callers keep it in step with their own changes).
   */
  watch(dir: string): DirMemory {
    const wd = sym.inotify_add_watch(this.fd, cstr(dir), WATCH_MASK);
    if (wd < 0) throw new SysError(`inotify_add_watch ${dir}`, errno());
    const memory: DirMemory = { reservations: [], lastReserved: new Map() };
    const key = dirKey(dir);
    if (key !== undefined) this.dirs.set(key, { wd, memory });
    this.stats.read++;
    return memory;
  }

  /** A read found something it cannot remember safely (an unreadable file): forget the dir. */
  forget(dir: string): void {
    const key = dirKey(dir);
    if (key !== undefined) this.dirs.delete(key);
  }

  /** Still under the lock, after this process's own changes to dir: those events are ours. */
  settle(dir: string): void {
    const key = dirKey(dir);
    this.consume(key === undefined ? undefined : this.dirs.get(key)?.wd);
  }

  close(): void {
    closeFd(this.fd);
    this.dirs.clear();
  }

  /** Reads pending events; every watched dir with an event not ours (ownWd) is forgotten. */
  private consume(ownWd: number | undefined): void {
    for (;;) {
      const n = Number(sym.read(this.fd, this.buf, this.buf.length));
      if (n < 0) {
        if (errno() === EAGAIN) return;
        // Cannot tell what changed: remember nothing.
        this.dirs.clear();
        return;
      }
      if (n === 0) return;
      for (let off = 0; off + 16 <= n; off += 16 + this.buf.readUInt32LE(off + 12)) {
        const wd = this.buf.readInt32LE(off);
        if (wd === ownWd) continue;
        if (wd < 0) {
          this.dirs.clear(); // IN_Q_OVERFLOW: events were lost
          continue;
        }
        for (const [dir, e] of this.dirs) if (e.wd === wd) this.dirs.delete(dir);
      }
    }
  }
}

/** The directory's identity (device and inode, whatever the spelling), or undefined: gone. */
function dirKey(dir: string): string | undefined {
  try {
    const st = stat(dir);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

let processCache: ListingCache | undefined;

/** Turns the memory on for this process (the CNI server does, once). */
export function enableListingCache(): void {
  processCache ??= ListingCache.open();
}

export function listingCache(): ListingCache | undefined {
  return processCache;
}

/** Turns it off again (tests that share a process). */
export function disableListingCache(): void {
  processCache?.close();
  processCache = undefined;
}
