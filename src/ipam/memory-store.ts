// An in-memory Store for fast allocator tests (host-local's backend/testing fake).
import { formatIp, type Ip } from "./ip-bigint.ts";
import { ownedBy, type AttachmentKey, type Listing, type Reservation, type Store } from "./store.ts";

export class MemoryStore implements Store {
  readonly reservations = new Map<string, Reservation>();
  readonly last = new Map<number, Ip>();
  private locked = false;

  lock(): void {
    if (this.locked) throw new Error("MemoryStore: lock taken twice (a missing unlock)");
    this.locked = true;
  }

  unlock(): void {
    this.locked = false;
  }

  reserve(ip: Ip, key: AttachmentKey): boolean {
    this.assertLocked();
    const name = formatIp(ip);
    if (this.reservations.has(name)) return false;
    this.reservations.set(name, { ip, ...key });
    return true;
  }

  release(ip: Ip): boolean {
    this.assertLocked();
    return this.reservations.delete(formatIp(ip));
  }

  releaseByKey(key: AttachmentKey): Ip[] {
    this.assertLocked();
    const out: Ip[] = [];
    for (const [name, r] of this.reservations) {
      if (ownedBy(r, key)) {
        this.reservations.delete(name);
        out.push(r.ip);
      }
    }
    return out;
  }

  list(): Listing {
    this.assertLocked();
    return { reservations: [...this.reservations.values()], unreadable: [] };
  }

  lastReserved(rangeSet: number): Ip | undefined {
    return this.last.get(rangeSet);
  }

  setLastReserved(rangeSet: number, ip: Ip): void {
    this.last.set(rangeSet, ip);
  }

  checkWritable(): void {}

  flowsMayRemain(): boolean {
    return true; // no history kept: always forget
  }

  private assertLocked(): void {
    if (!this.locked) throw new Error("MemoryStore: state used without the lock");
  }
}
