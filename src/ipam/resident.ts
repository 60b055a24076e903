// IPAM in a process that runs many calls (the CNI server in the agent, `mncni serve`): it
// remembers directory listings between calls (listing-cache.ts) and gives up waiting for a
// network's lock after a bound, answering "try again" (code 11). A plugin process waits as
// long as it takes, as host-local does: it blocks nobody but its own call. A server runs
// calls one at a time on the thread that also answers health checks and reconciles, so a
// lock held elsewhere (a stuck plugin process, an admin's flock) must not hold it for long.
import { setLockWait } from "./disk-store.ts";
import { enableListingCache } from "./listing-cache.ts";

/** How long a served call waits for a network's IPAM lock before answering code 11. */
export const RESIDENT_LOCK_WAIT_MS = 3000;

export function becomeResident(lockWaitMs = RESIDENT_LOCK_WAIT_MS): void {
  enableListingCache();
  setLockWait(lockWaitMs);
}
