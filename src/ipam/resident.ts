// IPAM in a process that runs many calls (the CNI server in the agent, `mncni serve`): it
// remembers directory listings between calls (listing-cache.ts), and it never waits for a
// network's lock on its thread. A plugin process waits as long as it takes, as host-local
// does: it blocks nobody but its own call. A server's thread also answers health checks,
// reconciles and takes new connections, so a lock held elsewhere (a stuck plugin process,
// an admin's flock) is given up on at once, the call rolls back, and the server waits
// asynchronously until the lock looks free, then runs the call again; after
// RESIDENT_LOCK_WAIT_MS the call is answered with code 11 "try again".
import type { Resident } from "../cni/plugin-spec.ts";
import { closeFd, errno, LOCK_EX, O_RDONLY, openFd, sym } from "../sys/libc.ts";
import { setLockWait } from "./disk-store.ts";
import { enableListingCache } from "./listing-cache.ts";

/** How long one served call may wait for a network's IPAM lock before answering code 11. */
const RESIDENT_LOCK_WAIT_MS = 3000;

const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** True when nobody holds the lock now (taken and dropped at once; never waits). */
function lockFree(lockFile: string): boolean {
  let fd: number;
  try {
    fd = openFd(lockFile, O_RDONLY);
  } catch {
    return true; // gone: the call will find out what it finds
  }
  try {
    return sym.flock(fd, LOCK_EX | LOCK_NB) === 0 || errno() !== EWOULDBLOCK;
  } finally {
    closeFd(fd); // drops the lock if it was taken
  }
}

/** Resolves when the lock looks free, or after ms: polled, the pause growing to 20 ms. */
async function untilFree(lockFile: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  for (let pause = 1; !lockFree(lockFile) && performance.now() < deadline; pause = Math.min(pause * 2, 20)) {
    await Bun.sleep(Math.min(pause, Math.max(deadline - performance.now(), 0)));
  }
}

export function becomeResident(lockWaitMs = RESIDENT_LOCK_WAIT_MS): Resident {
  enableListingCache();
  /** The lock the last call gave up on, if any (calls run one at a time). */
  let busy: string | undefined;
  setLockWait(0, (lockFile) => (busy = lockFile));
  return {
    again(startedAt) {
      const lockFile = busy;
      busy = undefined;
      if (lockFile === undefined) return undefined;
      const left = startedAt + lockWaitMs - performance.now();
      if (left <= 0) return undefined; // its code 11 stands
      return untilFree(lockFile, left).then(() => true);
    },
  };
}
