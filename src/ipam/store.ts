// The state behind the allocator, kept small (the shape of host-local's backend.Store) so
// the allocator can be tested against an in-memory fake and run for real on disk.
import type { Ip } from "./ip-bigint.ts";

/** The attachment that owns a reservation: (container ID, interface name). */
export interface AttachmentKey {
  containerId: string;
  ifname: string;
}

export interface Reservation {
  ip: Ip;
  containerId: string;
  /** Undefined for files of old host-local versions, which stored only the container ID. */
  ifname?: string;
}

export interface Listing {
  reservations: Reservation[];
  /** Reservations whose owner could not be read: the address is taken, the owner unknown. */
  unreadable: { ip: Ip; error: string }[];
}

export interface Store {
  /** Exclusive lock over the whole network's state, held across one operation. */
  lock(): void;
  unlock(): void;
  /** Atomically records the reservation; false when the address is already taken. */
  reserve(ip: Ip, key: AttachmentKey): boolean;
  /** Removes one reservation; false when it did not exist. */
  release(ip: Ip): boolean;
  /** Removes every reservation of the attachment and returns their addresses. */
  releaseByKey(key: AttachmentKey): Ip[];
  list(): Listing;
  lastReserved(rangeSet: number): Ip | undefined;
  setLastReserved(rangeSet: number, ip: Ip): void;
  /** Throws when new reservations could not be written. */
  checkWritable(): void;
  /**
   * After reserve(ip) succeeded: whether a previous holder's conntrack flows may remain on
   * the address (no DEL forgot them since it was last held, or the history is unknown).
   */
  flowsMayRemain(ip: Ip): boolean;
}

/** Legacy reservations (no ifname) belong to every interface of their container. */
export function ownedBy(r: Pick<Reservation, "containerId" | "ifname">, key: AttachmentKey): boolean {
  return r.containerId === key.containerId && (r.ifname === undefined || r.ifname === key.ifname);
}

export function withLock<T>(store: Store, fn: () => T): T {
  store.lock();
  try {
    return fn();
  } finally {
    store.unlock();
  }
}
