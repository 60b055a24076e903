// Entering a network namespace. This is the only module that calls setns(2).
//
// Why only synchronous work may run inside withNetns: setns() switches the namespace of
// the calling *thread*, not of the process. bun:ffi calls and sync fs calls run on the JS
// thread, so they see the namespace we entered. Anything asynchronous does not: an `await`
// resumes later, after we have switched back, and async I/O runs on Bun's worker threads,
// which never left the original namespace. So fn must be synchronous and must not start
// work that completes later; a returned Promise is rejected with a TypeError (after
// restoring) because its continuation would silently run in the wrong namespace.
import { CLONE_NEWNET, O_RDONLY, SysError, errno, openFd, sym } from "../sys/libc.ts";
import { NetlinkError } from "./errors.ts";

/** The current thread's namespace: /proc/self would name the main thread's instead. */
const SELF_NETNS = "/proc/thread-self/ns/net";

/** An O_RDONLY|O_CLOEXEC fd of a namespace file (/run/netns/NAME, /proc/PID/ns/net, ...). */
export function openNetnsFd(path: string): number {
  try {
    return openFd(path, O_RDONLY);
  } catch (e) {
    if (e instanceof SysError) throw new NetlinkError(`open network namespace "${path}"`, e.errno, { cause: e });
    throw e;
  }
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
