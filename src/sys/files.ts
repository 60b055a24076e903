// The file operations of a CNI call (IPAM state, the invocation log, sysctls, CNI_PATH),
// over libc rather than node:fs. A plugin process is started for every call, and the first
// use of node:fs costs ~0.9 ms of CPU in a compiled Bun executable (node:path ~0.3 ms), a
// sixth of what separated a call from the Go reference plugins' (docs/benchmarks.md, "The
// plugin alone: where its start-up goes"); libc is bound by every call already. Synchronous, on the
// calling thread (which is what makes /proc/sys follow withNetns). Errors are SysErrors
// whose `code` is the errno's name, as node's are.
import { closeFd, cstr, errno, O_CLOEXEC, sym, SysError, writeAll } from "./libc.ts";

const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const O_DIRECTORY = 0o200000;
const O_RDONLY = 0;
const EINTR = 4;
const ENOENT = 2;
const EEXIST = 17;
const EISDIR = 21;
const ENOTDIR = 20;
const EPERM = 1;
const F_OK = 0;
export const X_OK = 1;
const AT_FDCWD = -100;
const STATX_BASIC_STATS = 0x7ff;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

function check(r: number | bigint, op: string, path: string): number {
  const n = Number(r);
  if (n < 0) throw new SysError(`${op} ${path}`, errno());
  return n;
}

/** A path as a C string in a buffer reused by every call (an allocation per path showed in listings of many files). */
const pathBuf = Buffer.allocUnsafe(4096);
function cpath(path: string): Buffer {
  if (path.length * 3 + 1 > pathBuf.length) return cstr(path);
  const n = pathBuf.write(path, 0);
  pathBuf[n] = 0;
  return pathBuf;
}

function open(path: string, flags: number, mode: number, op: string): number {
  for (;;) {
    const fd = sym.open(cpath(path), flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    if (errno() !== EINTR) throw new SysError(`${op} ${path}`, errno());
  }
}

export function exists(path: string): boolean {
  return sym.access(cpath(path), F_OK) === 0;
}

/** access(2): throws when the caller may not (X_OK: execute). */
export function access(path: string, mode: number): void {
  check(sym.access(cpath(path), mode), "access", path);
}

/**
 * One scratch buffer for reads and directory listings, grown when a file needs it: the files
 * a call reads are small, and a listing reads every reservation file, so nothing is allocated
 * per file (with a buffer per file a listing of 110 cost 1.7 ms against node:fs's 1.05 ms).
 */
let scratch = Buffer.allocUnsafe(16384);

/** What a read after the first goes into: one byte, to learn that a file is at its end without a copy. */
const probe = Buffer.allocUnsafe(1);

/**
 * The most one read asks for: /proc/sys refuses a read of KMALLOC_MAX_SIZE (4 MiB here) or more
 * with ENOMEM, and the scratch buffer grows past that once a large file (the kernel's BTF) is read.
 */
const READ_MAX = 1 << 20;

function readInto(fd: number, buf: Buffer, path: string): number {
  for (;;) {
    const n = Number(sym.read(fd, buf, Math.min(buf.length, READ_MAX)));
    if (n >= 0) return n;
    if (errno() !== EINTR) throw new SysError(`read ${path}`, errno());
  }
}

export function readText(path: string): string {
  const len = readToScratch(path); // first: it may replace the scratch buffer by a bigger one
  return scratch.toString("utf8", 0, len);
}

/** The file's bytes (a copy). */
export function readBytes(path: string): Buffer {
  const len = readToScratch(path);
  return Buffer.from(scratch.subarray(0, len));
}

/** Reads the whole file into the scratch buffer; its length. */
function readToScratch(path: string): number {
  const fd = open(path, O_RDONLY, 0, "open");
  try {
    let len = readInto(fd, scratch, path);
    while (len > 0 && readInto(fd, probe, path) === 1) {
      // More than the first read gave (a large file, or one read in pieces as /proc's are).
      if (len === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger, 0, 0, len);
        scratch = bigger;
      }
      scratch[len++] = probe[0]!;
      if (len < scratch.length) len += readInto(fd, scratch.subarray(len), path);
    }
    return len;
  } finally {
    closeFd(fd);
  }
}

export interface WriteOptions {
  /** Fail with EEXIST when the file exists (node's flag "wx"). */
  exclusive?: boolean;
  /** Add to the end instead of replacing the content. */
  append?: boolean;
  /** Of a file created (before the umask); default 0o666 as node's. */
  mode?: number;
  /**
   * Overwrite from the start, then cut the file to the new length, instead of truncating it
   * to zero first: on ext4 a file truncated to zero and written again has its data flushed
   * when closed (auto_da_alloc), ~150-500 µs against ~10 µs. Not atomic: a crash between the
   * write and the cut leaves the new content followed by the old one's tail.
   */
  inPlace?: boolean;
}

export function writeText(path: string, content: string, o: WriteOptions = {}): void {
  const flags = O_WRONLY | O_CREAT | (o.exclusive ? O_EXCL : 0) | (o.append ? O_APPEND : o.inPlace ? 0 : O_TRUNC);
  const fd = open(path, flags, o.mode ?? 0o666, "open");
  try {
    const bytes = Buffer.from(content);
    writeAll(fd, bytes, `write ${path}`);
    if (o.inPlace) check(sym.ftruncate(fd, bytes.length), "ftruncate", path);
  } finally {
    closeFd(fd);
  }
}

export function link(existing: string, path: string): void {
  check(sym.link(cstr(existing), cstr(path)), "link", path);
}

export function unlink(path: string): void {
  check(sym.unlink(cpath(path)), "unlink", path);
}

export function rename(from: string, to: string): void {
  check(sym.rename(cstr(from), cstr(to)), "rename", from);
}

/** mkdir(2); recursive: the missing parents too, and no error when it exists. */
export function mkdir(path: string, o: { recursive?: boolean; mode?: number } = {}): void {
  const mode = o.mode ?? 0o777;
  if (sym.mkdir(cpath(path), mode) === 0) return;
  const err = errno();
  if (o.recursive && err === EEXIST && stat(path).isDirectory) return;
  if (!o.recursive || err !== ENOENT) throw new SysError(`mkdir ${path}`, err);
  const parent = path.replace(/\/+[^/]+\/*$/, "");
  if (parent === "" || parent === path) throw new SysError(`mkdir ${path}`, err);
  mkdir(parent, o);
  if (sym.mkdir(cpath(path), mode) !== 0 && errno() !== EEXIST) throw new SysError(`mkdir ${path}`, errno());
}

/** The names in a directory, "." and ".." left out, in the order the file system gives them. */
export function readDir(path: string): string[] {
  const fd = open(path, O_RDONLY | O_DIRECTORY, 0, "opendir");
  const names: string[] = [];
  const buf = scratch;
  try {
    for (;;) {
      const n = Number(sym.getdents64(fd, buf, buf.length));
      if (n < 0) {
        if (errno() === EINTR) continue;
        throw new SysError(`readdir ${path}`, errno());
      }
      if (n === 0) return names;
      // struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
      for (let off = 0; off < n; ) {
        const reclen = buf.readUInt16LE(off + 16);
        const end = buf.indexOf(0, off + 19);
        const name = buf.toString("utf8", off + 19, end < 0 || end > off + reclen ? off + reclen : end);
        if (name !== "." && name !== "..") names.push(name);
        off += reclen;
      }
    }
  } finally {
    closeFd(fd);
  }
}

/** rm -rf: the path and, for a directory, everything in it; nothing when it does not exist. */
export function removeTree(path: string): void {
  if (sym.unlink(cpath(path)) === 0) return;
  const err = errno();
  if (err === ENOENT) return;
  if (err !== EISDIR && err !== EPERM) throw new SysError(`unlink ${path}`, err);
  let names: string[];
  try {
    names = readDir(path);
  } catch (e) {
    if ((e as SysError).errno === ENOENT) return;
    if ((e as SysError).errno === ENOTDIR) throw new SysError(`unlink ${path}`, err);
    throw e;
  }
  for (const n of names) removeTree(`${path}/${n}`);
  if (sym.rmdir(cpath(path)) !== 0 && errno() !== ENOENT) throw new SysError(`rmdir ${path}`, errno());
}

export interface Stat {
  /** The device, as "major:minor". */
  dev: string;
  ino: bigint;
  size: number;
  isFile: boolean;
  isDirectory: boolean;
}

/** stat(2) through statx, following symbolic links. */
export function stat(path: string): Stat {
  const stx = Buffer.alloc(256);
  check(sym.statx(AT_FDCWD, cpath(path), 0, STATX_BASIC_STATS, stx), "stat", path);
  const type = stx.readUInt16LE(28) & S_IFMT;
  return {
    dev: `${stx.readUInt32LE(136)}:${stx.readUInt32LE(140)}`,
    ino: stx.readBigUInt64LE(32),
    size: Number(stx.readBigUInt64LE(40)),
    isFile: type === S_IFREG,
    isDirectory: type === S_IFDIR,
  };
}
