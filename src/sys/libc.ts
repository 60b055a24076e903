// The only place that binds libc through bun:ffi. Every call here is synchronous and
// runs on the calling (JS) thread, which is what makes setns() + netlink safe to use.
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";

const { i32, u32, u64, i64, ptr, cstring } = FFIType;

const lib = dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  sendto: { args: [i32, ptr, u64, i32, ptr, u32], returns: i32 },
  recv: { args: [i32, ptr, u64, i32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
  geteuid: { args: [], returns: u32 },
  fstatfs: { args: [i32, ptr], returns: i32 },
  statx: { args: [i32, cstring, i32, u32, ptr], returns: i32 },
  // The third argument is a pointer (ifreq for SIOCETHTOOL) or null when the request takes none.
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  setns: { args: [i32, i32], returns: i32 },
  open: { args: [cstring, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  connect: { args: [i32, ptr, u32], returns: i32 },
  shutdown: { args: [i32, i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  readlink: { args: [cstring, ptr, u64], returns: i64 },
  // The file operations of sys/files.ts.
  access: { args: [cstring, i32], returns: i32 },
  link: { args: [cstring, cstring], returns: i32 },
  unlink: { args: [cstring], returns: i32 },
  ftruncate: { args: [i32, i64], returns: i32 },
  rename: { args: [cstring, cstring], returns: i32 },
  mkdir: { args: [cstring, u32], returns: i32 },
  rmdir: { args: [cstring], returns: i32 },
  getdents64: { args: [i32, ptr, u64], returns: i64 },
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, cstring, u32], returns: i32 },
  __errno_location: { args: [], returns: ptr },
  // syscall(2) with the one shape mncni calls it with: bpf(cmd, attr, size) (no libc wrapper).
  syscall: { args: [i64, i32, ptr, u32], returns: i64 },
});

export const sym = lib.symbols;

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  return read.i32(sym.__errno_location() as Pointer, 0);
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EAGAIN",
  12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 28: "ENOSPC", 30: "EROFS", 34: "ERANGE", 36: "ENAMETOOLONG", 39: "ENOTEMPTY", 61: "ENODATA",
  64: "ENONET", 71: "EPROTO", 75: "EOVERFLOW", 90: "EMSGSIZE", 93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL",
  100: "ENETDOWN", 101: "ENETUNREACH", 105: "ENOBUFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
};

export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno ${n}`;
}

/** An error from a libc call, carrying the errno and its symbolic name. */
export class SysError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op}: ${errnoName(errno)}`);
    this.name = "SysError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

export const O_RDONLY = 0;
export const O_CREAT = 0o100;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const CLONE_NEWNET = 0x40000000;

export function cstr(s: string): Buffer {
  return Buffer.from(s + "\0");
}

/** open(2) returning the fd or throwing a SysError. */
export function openFd(path: string, flags: number, mode = 0o600): number {
  const fd = sym.open(cstr(path), flags | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError(`open ${path}`, errno());
  return fd;
}

export function closeFd(fd: number): void {
  sym.close(fd);
}

/** Reads fd to its end (retrying EINTR). */
export function readAll(fd: number, op = "read"): Uint8Array {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(total < 65536 ? 65536 : total);
    const n = Number(sym.read(fd, buf, buf.length));
    if (n < 0) {
      if (errno() === 4) continue;
      throw new SysError(op, errno());
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/** Writes all of data to fd (retrying EINTR and short writes). */
export function writeAll(fd: number, data: Uint8Array, op = "write"): void {
  let off = 0;
  while (off < data.length) {
    const n = Number(sym.write(fd, data.subarray(off), data.length - off));
    if (n < 0) {
      if (errno() === 4) continue;
      throw new SysError(op, errno());
    }
    off += n;
  }
}

/** readlink(2) as a string. */
export function readLink(path: string): string {
  const buf = Buffer.allocUnsafe(256);
  const n = Number(sym.readlink(cstr(path), buf, buf.length));
  if (n < 0) throw new SysError(`readlink ${path}`, errno());
  return buf.toString("utf8", 0, n);
}
