// Entering a network namespace. This is the only module that calls setns(2).
//
// Why only synchronous work may run inside withNetns: setns() switches the namespace of
// the calling *thread*, not of the process. bun:ffi calls and sync fs calls run on the JS
// thread, so they see the namespace we entered. Anything asynchronous does not: an `await`
// resumes later, after we have switched back, and async I/O runs on Bun's worker threads,
// which never left the original namespace. So fn must be synchronous and must not start
// work that completes later; a returned Promise is rejected with a TypeError (after
// restoring) because its continuation would silently run in the wrong namespace.
import { CLONE_NEWNET, O_NONBLOCK, O_RDONLY, SysError, cstr, errno, openFd, sym } from "../sys/libc.ts";
import { NetlinkError } from "./errors.ts";

/** The current thread's namespace: /proc/self would name the main thread's instead. */
const SELF_NETNS = "/proc/thread-self/ns/net";

const AT_FDCWD = -100;
const STATX_TYPE = 1;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const FILE_TYPES: Record<number, string> = { 0o140000: "a socket", 0o120000: "a symbolic link", 0o060000: "a block device", 0o040000: "a directory", 0o020000: "a character device", 0o010000: "a FIFO" };
const NSFS_MAGIC = 0x6e736673;
const NS_GET_NSTYPE = 0xb703;
const EINVAL = 22;

/** Why path cannot be a namespace file, judged without opening it (a FIFO would block open). */
function notRegular(path: string): NetlinkError | undefined {
  const stx = Buffer.alloc(256); // struct statx; stx_mode is the u16 at offset 28 on every arch
  if (sym.statx(AT_FDCWD, cstr(path), 0, STATX_TYPE, stx) < 0) return new NetlinkError(`open network namespace "${path}"`, errno());
  const type = stx.readUInt16LE(28) & S_IFMT;
  if (type === S_IFREG) return undefined;
  return new NetlinkError(`open network namespace "${path}"`, EINVAL, { extack: `it is ${FILE_TYPES[type] ?? "not a regular file"}, not a network namespace` });
}

/** Why the open fd is not a network namespace (nsfs, of type CLONE_NEWNET), or undefined. */
function notNetns(fd: number, path: string): NetlinkError | undefined {
  const fs = Buffer.alloc(128); // struct statfs; f_type is the first field (a long)
  if (sym.fstatfs(fd, fs) < 0) return new NetlinkError(`open network namespace "${path}"`, errno());
  if (Number(fs.readBigInt64LE(0)) !== NSFS_MAGIC) return new NetlinkError(`open network namespace "${path}"`, EINVAL, { extack: "it is a file, not a namespace" });
  const type = sym.ioctl(fd, NS_GET_NSTYPE, null);
  if (type !== CLONE_NEWNET) return new NetlinkError(`open network namespace "${path}"`, EINVAL, { extack: "it is a namespace of another type" });
  return undefined;
}

/**
 * An O_RDONLY|O_CLOEXEC fd of a network namespace file (/run/netns/NAME, /proc/PID/ns/net,
 * ...). Anything else is refused, and a path is never opened for reading unless it is a
 * regular file: a FIFO or a device could block the open (and a resident server with it).
 */
export function openNetnsFd(path: string): number {
  const bad = notRegular(path);
  if (bad) throw bad;
  let fd: number;
  try {
    fd = openFd(path, O_RDONLY | O_NONBLOCK);
  } catch (e) {
    if (e instanceof SysError) throw new NetlinkError(`open network namespace "${path}"`, e.errno, { cause: e });
    throw e;
  }
  const wrong = notNetns(fd, path);
  if (wrong) {
    sym.close(fd);
    throw wrong;
  }
  return fd;
}

function enter(fd: number, what: string): void {
  if (sym.setns(fd, CLONE_NEWNET) < 0) throw new NetlinkError(`enter network namespace "${what}"`, errno());
}

/**
 * Runs fn with the calling thread inside the network namespace at path, and always
 * switches back, also when fn throws. fn must be synchronous (see above).
 */
export function withNetns<T>(path: string, fn: () => T): T {
  const origFd = openNetnsFd(SELF_NETNS);
  let result: T;
  try {
    const targetFd = openNetnsFd(path);
    try {
      enter(targetFd, path);
    } finally {
      sym.close(targetFd);
    }
    try {
      result = fn();
    } finally {
      if (sym.setns(origFd, CLONE_NEWNET) < 0) {
        // Continuing would run the rest of the process in the wrong namespace.
        const err = new NetlinkError("restore the original network namespace", errno());
        console.error(`mncni: fatal: ${err.message}`);
        process.exit(70);
      }
    }
  } finally {
    sym.close(origFd);
  }
  if (isThenable(result)) {
    result.then(undefined, () => {}); // its failure is reported through the TypeError below
    throw new TypeError(`cannot run async function in network namespace "${path}": only synchronous work is allowed`);
  }
  return result;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as { then?: unknown }).then === "function";
}
