// The IPAM verbs on any Store, each one operation under the store's lock: allocate one
// address per range set (round robin, requested IPs first), release, check, gc, status.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { IPConfig } from "../cni/types.ts";
import type { RangeSet } from "./config.ts";
import { formatIp, parseIpOrCidr, sameIp, type Ip } from "./ip-bigint.ts";
import { addressWithPrefix, candidates, describeRangeSet, findSpan, freeCount, unusableReason } from "./range.ts";
import { ownedBy, withLock, type AttachmentKey, type Store } from "./store.ts";

/** CHECK found the reservation missing or different (plugin-specific code, spec: 100+). */
export const IPAM_CHECK_FAILED = 100;

export interface AllocateOptions {
  store: Store;
  ranges: readonly RangeSet[];
  network: string;
  key: AttachmentKey;
  requestedIps?: readonly string[];
}

const who = (k: AttachmentKey) => `container "${k.containerId}" interface "${k.ifname}"`;

/** Matches each requested IP to the range set containing it; refuses leftovers. */
function assignRequested(o: AllocateOptions): (Ip | undefined)[] {
  const pending = new Map<string, Ip>();
  for (const text of o.requestedIps ?? []) {
    const ip = parseIpOrCidr(text.trim());
    if (!ip) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot allocate requested IP "${text}": not an IP address`);
    pending.set(formatIp(ip), ip);
  }
  const assigned = o.ranges.map((set) => {
    for (const [name, ip] of pending) {
      if (findSpan(set, ip)) {
        pending.delete(name);
        return ip;
      }
    }
    return undefined;
  });
  if (pending.size > 0) {
    const names = [...pending.keys()].join(", ");
    throw new CniError(
      ErrorCode.InvalidNetworkConfig,
      `cannot allocate requested IP "${names}" in network "${o.network}": not in any range set, or its range set already has a requested IP (${o.ranges.map(describeRangeSet).join("; ")})`,
    );
  }
  return assigned;
}

/** Allocates one address per range set for the attachment; all or nothing. */
export function allocate(o: AllocateOptions): IPConfig[] {
  const requested = assignRequested(o);
  return withLock(o.store, () => {
    const { reservations, unreadable } = o.store.list();
    // Like host-local (and the spec): an attachment gets its addresses once, until DEL.
    const held = reservations.find((r) => ownedBy(r, o.key) && o.ranges.some((set) => findSpan(set, r.ip)));
    if (held) {
      throw new CniError(
        ErrorCode.TryAgainLater,
        `cannot allocate an IP for ${who(o.key)} in network "${o.network}": it already holds ${formatIp(held.ip)} (DEL it first)`,
      );
    }
    const taken = new Map<string, Ip>();
    for (const r of [...reservations, ...unreadable]) taken.set(formatIp(r.ip), r.ip);
    const done: Ip[] = [];
    try {
      return o.ranges.map((set, i) => {
        const ip = requested[i] ? reserveRequested(o, set, requested[i]!) : reserveNext(o, set, i, taken);
        done.push(ip);
        o.store.setLastReserved(i, ip);
        const span = findSpan(set, ip)!;
        const conf: IPConfig = { address: addressWithPrefix(span, ip) };
        if (span.range.gateway) conf.gateway = span.range.gateway;
        return conf;
      });
    } catch (e) {
      for (const ip of done) {
        try {
          o.store.release(ip);
        } catch {
          // The allocation error is the one to report; a leftover is freed by DEL or GC.
        }
      }
      throw e;
    }
  });
}

function reserveRequested(o: AllocateOptions, set: RangeSet, ip: Ip): Ip {
  const why = unusableReason(findSpan(set, ip)!, ip.value);
  if (why) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot allocate requested IP "${formatIp(ip)}": it is ${why}`);
  if (o.store.reserve(ip, o.key)) return ip;
  const owner = o.store.list().reservations.find((r) => sameIp(r.ip, ip));
  const by = owner ? ` by container "${owner.containerId}"${owner.ifname ? ` interface "${owner.ifname}"` : ""}` : "";
  throw new CniError(ErrorCode.TryAgainLater, `cannot allocate requested IP "${formatIp(ip)}" in network "${o.network}": already reserved${by}`);
}

function reserveNext(o: AllocateOptions, set: RangeSet, index: number, taken: Map<string, Ip>): Ip {
  const exhausted = () =>
    new CniError(
      ErrorCode.TryAgainLater,
      `cannot allocate an IP in network "${o.network}" range set ${index} (${describeRangeSet(set)}): no free address left`,
    );
  // Counting first keeps a full IPv6 range from being walked address by address.
  if (freeCount(set, taken.values()) <= 0n) throw exhausted();
  for (const { ip } of candidates(set, o.store.lastReserved(index))) {
    const name = formatIp(ip);
    if (taken.has(name)) continue;
    if (o.store.reserve(ip, o.key)) return ip;
    taken.set(name, ip);
  }
  throw exhausted();
}

export function release(store: Store, key: AttachmentKey): Ip[] {
  return withLock(store, () => store.releaseByKey(key));
}

export interface CheckOptions {
  store: Store;
  ranges: readonly RangeSet[];
  network: string;
  key: AttachmentKey;
  /** Addresses the attachment should hold (bare or CIDR), e.g. from prevResult. */
  expected?: readonly string[];
}

export function check(o: CheckOptions): void {
  const fail = (why: string) => new CniError(IPAM_CHECK_FAILED, `cannot verify the IP reservation of ${who(o.key)} in network "${o.network}": ${why}`);
  const held = withLock(o.store, () => o.store.list().reservations.filter((r) => ownedBy(r, o.key)));
  if (held.length === 0) throw fail("no address is reserved");
  o.ranges.forEach((set, i) => {
    if (!held.some((r) => findSpan(set, r.ip))) throw fail(`no address is reserved in range set ${i} (${describeRangeSet(set)})`);
  });
  if (o.expected === undefined) return;
  const want = new Set(
    o.expected.map((t) => {
      const ip = parseIpOrCidr(t);
      if (!ip) throw fail(`expected address "${t}" is not an IP address`);
      return formatIp(ip);
    }),
  );
  const have = new Set(held.map((r) => formatIp(r.ip)));
  const missing = [...want].filter((a) => !have.has(a));
  const extra = [...have].filter((a) => !want.has(a));
  if (missing.length || extra.length) {
    throw fail(`reserved [${[...have].join(", ")}], expected [${[...want].join(", ")}]`);
  }
}

export interface GcOptions {
  store: Store;
  network: string;
  valid: readonly { containerID: string; ifname: string }[];
}

/** Releases every reservation not owned by a valid attachment; returns the released IPs. */
export function gc(o: GcOptions): string[] {
  const isValid = (r: { containerId: string; ifname?: string }) =>
    o.valid.some((a) => ownedBy(r, { containerId: a.containerID, ifname: a.ifname }));
  const released: string[] = [];
  const errors: string[] = [];
  withLock(o.store, () => {
    const { reservations, unreadable } = o.store.list();
    // An unreadable file has no known owner: keep it (it may be valid) and report it.
    for (const u of unreadable) errors.push(u.error);
    for (const r of reservations) {
      if (isValid(r)) continue;
      try {
        if (o.store.release(r.ip)) released.push(formatIp(r.ip));
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  });
  if (errors.length > 0) {
    throw new CniError(
      ErrorCode.IOFailure,
      `cannot garbage-collect every IP reservation of network "${o.network}": ${errors.length} failed (released ${released.length})`,
      [...errors, `released: ${released.join(", ")}`].join("; "),
    );
  }
  return released;
}

export interface StatusOptions {
  store: Store;
  ranges: readonly RangeSet[];
  network: string;
}

/** Throws code 50 unless an ADD could be served now. */
export function status(o: StatusOptions): void {
  const unavailable = (why: string, cause?: unknown) =>
    new CniError(ErrorCode.PluginNotAvailable, `cannot serve ADD on network "${o.network}": ${why}`, "", { cause });
  let taken: Ip[];
  try {
    taken = withLock(o.store, () => {
      o.store.checkWritable();
      const { reservations, unreadable } = o.store.list();
      return [...reservations, ...unreadable].map((r) => r.ip);
    });
  } catch (e) {
    throw unavailable(`IPAM state is not usable: ${(e as Error).message}`, e);
  }
  // ADD needs one address from every range set, so one exhausted set blocks it.
  o.ranges.forEach((set, i) => {
    if (freeCount(set, taken) <= 0n) throw unavailable(`range set ${i} (${describeRangeSet(set)}) has no free address`);
  });
}
