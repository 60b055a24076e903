// The pod CIDRs (IPv4 and IPv6) of the other nodes reached over host-gw routes (no encapsulation), each with
// the underlay device its route goes out of: an LPM trie the programs look a remote pod's
// address up in. A destination in it may take bpf_redirect_neigh when the kernel's own route
// lookup (bpf_fib_lookup) picks that same device; a source in it, arriving on that device,
// may be redirected straight to a local plain pod. VXLAN peers are never in it.
import { LPM_KEY_SIZE, keyCidr, lpmKey } from "./addr-keys.ts";
import { MAP_F_NO_PREALLOC, MAP_TYPE, closeBpfFd, mapCreate, mapDelete, mapKeys, mapLookup, mapUpdate } from "./syscall.ts";

/** value: the underlay device's ifindex (u32). */
export const HOST_GW_VALUE_SIZE = 4;

export interface HostGwRoute {
  /** a remote node's pod CIDR, e.g. 10.244.2.0/24 or fd00:10:244:2::/64 */
  cidr: string;
  /** the ifindex of the device the route to it goes out of (this node's underlay) */
  ifindex: number;
}

/** The host-gw routes map, over an fd this object owns. */
export class HostGwRoutesMap {
  private constructor(readonly fd: number) {}

  static create(maxEntries = 1024): HostGwRoutesMap {
    return new HostGwRoutesMap(mapCreate({ type: MAP_TYPE.LPM_TRIE, keySize: LPM_KEY_SIZE, valueSize: HOST_GW_VALUE_SIZE, maxEntries, name: "mncni_hostgw", flags: MAP_F_NO_PREALLOC }));
  }

  /** Adopts a map found by its ID (bpf fdById), taking ownership of the fd. */
  static adopt(fd: number): HostGwRoutesMap {
    return new HostGwRoutesMap(fd);
  }

  set(r: HostGwRoute): void {
    const v = new Uint8Array(HOST_GW_VALUE_SIZE);
    new DataView(v.buffer).setUint32(0, r.ifindex, true);
    mapUpdate(this.fd, lpmKey(r.cidr), v);
  }

  delete(cidr: string): boolean {
    return mapDelete(this.fd, lpmKey(cidr));
  }

  /** The entry for exactly this CIDR (not a longest-prefix match). */
  get(cidr: string): HostGwRoute | undefined {
    const key = lpmKey(cidr);
    const v = mapLookup(this.fd, key, HOST_GW_VALUE_SIZE);
    // A trie's lookup is longest-prefix: check that the match is this very CIDR.
    if (!v || mapKeys(this.fd, LPM_KEY_SIZE).every((k) => keyCidr(k) !== keyCidr(key))) return undefined;
    return { cidr: keyCidr(key), ifindex: new DataView(v.buffer).getUint32(0, true) };
  }

  list(): HostGwRoute[] {
    return mapKeys(this.fd, LPM_KEY_SIZE).map((k) => ({ cidr: keyCidr(k), ifindex: new DataView(mapLookup(this.fd, k, HOST_GW_VALUE_SIZE)!.buffer).getUint32(0, true) }));
  }

  close(): void {
    closeBpfFd(this.fd);
  }
}
