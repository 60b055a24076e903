// Range arithmetic on the parsed config: membership, addresses that are never handed out,
// free-address counting and host-local's round-robin iteration order.
import type { Range, RangeSet } from "./config.ts";
import { formatIp, ipOf, lastOf, parseCidr, parseIp, type Family, type Ip } from "./ip-bigint.ts";

export interface Span {
  readonly range: Range;
  readonly family: Family;
  readonly prefix: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly network: bigint;
  readonly last: bigint;
  readonly gateway?: bigint;
}

// Configs are frozen, so the numeric form can be cached per range object.
const cache = new WeakMap<Range, Span>();

function spanOf(range: Range): Span {
  let s = cache.get(range);
  if (!s) {
    const { ip, prefix } = parseCidr(range.subnet)!;
    s = {
      range,
      family: ip.family,
      prefix,
      start: parseIp(range.rangeStart)!.value,
      end: parseIp(range.rangeEnd)!.value,
      network: ip.value,
      last: lastOf(ip, prefix),
      gateway: range.gateway === undefined ? undefined : parseIp(range.gateway)!.value,
    };
    cache.set(range, s);
  }
  return s;
}

export const spansOf = (set: RangeSet): Span[] => set.map(spanOf);

export function spanContains(s: Span, ip: Ip): boolean {
  return ip.family === s.family && ip.value >= s.start && ip.value <= s.end;
}

export function findSpan(set: RangeSet, ip: Ip): Span | undefined {
  return spansOf(set).find((s) => spanContains(s, ip));
}

/** Why an address inside a range is never allocated, or undefined when it may be. */
export function unusableReason(s: Span, value: bigint): string | undefined {
  if (value === s.gateway) return "the gateway";
  if (value === s.network) return "the network address";
  if (s.family === 4 && value === s.last) return "the broadcast address";
  return undefined;
}

/** How many addresses of the span can be allocated at all. */
function usableCount(s: Span): bigint {
  const special = new Set<bigint>([s.network, ...(s.gateway === undefined ? [] : [s.gateway]), ...(s.family === 4 ? [s.last] : [])]);
  let n = s.end - s.start + 1n;
  for (const v of special) if (v >= s.start && v <= s.end) n--;
  return n;
}

/** Free addresses of a range set given the set of taken values of its family. */
export function freeCount(set: RangeSet, taken: Iterable<Ip>): bigint {
  const spans = spansOf(set);
  let free = spans.reduce((n, s) => n + usableCount(s), 0n);
  for (const ip of taken) {
    const s = spans.find((sp) => spanContains(sp, ip));
    if (s && unusableReason(s, ip.value) === undefined) free--;
  }
  return free;
}

export function describeRangeSet(set: RangeSet): string {
  return set.map((r) => `${r.subnet} ${r.rangeStart}-${r.rangeEnd}`).join(", ");
}

/**
 * Every allocatable address of the set once, in host-local's order: starting after the
 * last reserved address (round robin, so a freed address is not reused at once), across
 * the ranges in order and wrapping around; from the first range's start when `last` is
 * unknown or no longer in the set.
 */
export function* candidates(set: RangeSet, last?: Ip): Generator<{ span: Span; ip: Ip }> {
  const spans = spansOf(set);
  let idx = last ? spans.findIndex((s) => spanContains(s, last)) : -1;
  let cur: bigint;
  if (idx >= 0) {
    cur = last!.value;
    [idx, cur] = step(spans, idx, cur);
  } else {
    idx = 0;
    cur = spans[0].start;
  }
  const total = spans.reduce((n, s) => n + (s.end - s.start + 1n), 0n);
  for (let n = 0n; n < total; n++) {
    const s = spans[idx];
    if (unusableReason(s, cur) === undefined) yield { span: s, ip: ipOf(s.family, cur) };
    [idx, cur] = step(spans, idx, cur);
  }
}

function step(spans: Span[], idx: number, cur: bigint): [number, bigint] {
  if (cur < spans[idx].end) return [idx, cur + 1n];
  const next = (idx + 1) % spans.length;
  return [next, spans[next].start];
}

/** "10.0.0.5/24" with the subnet's prefix, as results carry it. */
export function addressWithPrefix(s: Span, ip: Ip): string {
  return `${formatIp(ip)}/${s.prefix}`;
}
