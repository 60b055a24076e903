// The CIDR operations of mncni (every part uses these), on top of the one parser in ./ip.ts.
import { familyOf, formatCIDR, formatIP, fromBigInt, parseCIDR, parseIPv4Into, toBigInt, tryParseIP, type CIDR, type Family } from "./ip.ts";

/** The CIDR with its host bits cleared (set, with `fill`): the network (or broadcast) address. */
function withHostBits(c: CIDR, fill: boolean): Uint8Array {
  const bytes = new Uint8Array(c.bytes);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, c.prefixLen - i * 8));
    const netMask = (0xff << (8 - keep)) & 0xff;
    bytes[i] = fill ? bytes[i]! | (~netMask & 0xff) : bytes[i]! & netMask;
  }
  return bytes;
}

/** A copy of the CIDR with the host bits cleared (the network). */
export function maskCIDR(c: CIDR): CIDR {
  return { family: c.family, bytes: withHostBits(c, false), prefixLen: c.prefixLen };
}

/** IPv4 broadcast address of a CIDR (all host bits set). */
export function broadcastOf(c: CIDR): Uint8Array {
  return withHostBits(c, true);
}

/** "10.244.1.7/24" -> "10.244.1.0/24"; throws on anything that is not a CIDR. */
export function normalizeCIDR(s: string): string {
  if (!s.includes("/")) throw new TypeError(`cannot parse CIDR "${s}": no prefix length`);
  const c = maskCIDR(parseCIDR(s));
  return formatCIDR(c.bytes, c.prefixLen, c.family);
}

/** The canonical text of an address, or undefined when it is not one. */
export function normalizeIP(s: string): string | undefined {
  // IPv4 parses only in its canonical form (no leading zeros): the text is already it. Checked
  // into a scratch buffer: a state of 10,000 Services normalises ~100,000 endpoint addresses,
  // and a buffer and an object each were garbage interleaved with the state's long-lived views.
  if (!s.includes(":")) return parseIPv4Into(s, V4_SCRATCH, 0) ? s : undefined;
  const ip = tryParseIP(s);
  return ip && formatIP(ip.bytes, ip.family);
}
const V4_SCRATCH = new Uint8Array(4);

/** True when inner (an address or a CIDR) lies inside outer. */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCIDR(outer);
  const i = parseCIDR(inner);
  if (o.family !== i.family || i.prefixLen < o.prefixLen) return false;
  for (let bit = 0; bit < o.prefixLen; bit += 8) {
    const keep = Math.min(8, o.prefixLen - bit);
    const mask = (0xff << (8 - keep)) & 0xff;
    const k = bit / 8;
    if ((o.bytes[k]! & mask) !== (i.bytes[k]! & mask)) return false;
  }
  return true;
}


/** The network of c cut to len bits, as a map key. */
function keyAt(c: CIDR, len: number): string {
  let k = `${c.family}/${len}`;
  for (let i = 0; i * 8 < len; i += 4) {
    // 32 bits at a time: cheap keys matter with thousands of CIDRs per pass.
    let word = 0;
    for (let j = i; j < i + 4; j++) {
      const keep = Math.max(0, Math.min(8, len - j * 8));
      word = word * 256 + ((c.bytes[j] ?? 0) & ((0xff << (8 - keep)) & 0xff));
    }
    k += `/${word}`;
  }
  return k;
}

/**
 * CIDRs indexed for overlap queries in O(distinct prefix lengths) instead of a scan of every
 * member: with a thousand Nodes the reconcilers ask this for every pod CIDR on every pass.
 */
export class CIDRIndex<T> {
  private readonly members: { c: CIDR; value: T }[] = [];
  private readonly exact = new Map<string, T>();
  private readonly lengths: Record<Family, Set<number>> = { 4: new Set(), 6: new Set() };
  /** Per query prefix length: every member at least that long, keyed by its network cut to that length. */
  private readonly cut = new Map<string, Map<string, T>>();

  add(cidr: string, value: T): void {
    const c = parseCIDR(cidr);
    this.members.push({ c, value });
    const k = keyAt(c, c.prefixLen);
    if (!this.exact.has(k)) this.exact.set(k, value);
    this.lengths[c.family].add(c.prefixLen);
    for (const [id, m] of this.cut) {
      const [fam, len] = id.split("/").map(Number) as [number, number];
      if (fam === c.family && len <= c.prefixLen) {
        const ck = keyAt(c, len);
        if (!m.has(ck)) m.set(ck, value);
      }
    }
  }

  private cutAt(c: CIDR): Map<string, T> {
    const id = `${c.family}/${c.prefixLen}`;
    let m = this.cut.get(id);
    if (!m) {
      m = new Map();
      for (const e of this.members) {
        if (e.c.family !== c.family || e.c.prefixLen < c.prefixLen) continue;
        const ck = keyAt(e.c, c.prefixLen);
        if (!m.has(ck)) m.set(ck, e.value);
      }
      this.cut.set(id, m);
    }
    return m;
  }

  /** A member that contains cidr (or equals it). */
  container(cidr: string): T | undefined {
    const c = parseCIDR(cidr);
    for (const l of this.lengths[c.family]) {
      if (l > c.prefixLen) continue;
      const v = this.exact.get(keyAt(c, l));
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** A member that overlaps cidr (contains it or lies inside it). */
  overlapping(cidr: string): T | undefined {
    const c = parseCIDR(cidr);
    return this.container(cidr) ?? this.cutAt(c).get(keyAt(c, c.prefixLen));
  }
}

/** Normalised, deduplicated, without CIDRs covered by others, sorted: stable text for rulesets. */
export function collapseCIDRs(list: Iterable<string>): string[] {
  const all = [...new Set([...list].map(normalizeCIDR))].map((s) => ({ s, len: Number(s.slice(s.indexOf("/") + 1)) }));
  all.sort((a, b) => a.len - b.len);
  const idx = new CIDRIndex<string>();
  const kept: string[] = [];
  for (const { s } of all) {
    if (idx.container(s) !== undefined) continue;
    idx.add(s, s);
    kept.push(s);
  }
  return kept.sort((a, b) => familyOf(a) - familyOf(b) || a.localeCompare(b, "en", { numeric: true }));
}


/**
 * The addresses of `blocks` (each a CIDR less its `except` CIDRs), all of one family, as
 * sorted, disjoint, non-adjacent intervals, each written as a CIDR when it is one, else
 * `first-last`: the elements of one nft interval set for the whole union. (Interval
 * arithmetic over bigints; no kept package does it.)
 */
export function blockIntervals(blocks: readonly { cidr: string; except?: readonly string[] }[], family: Family): string[] {
  const bounds = (s: string): [bigint, bigint] => {
    const c = parseCIDR(s);
    return [toBigInt(withHostBits(c, false)), toBigInt(withHostBits(c, true))];
  };
  const ranges: [bigint, bigint][] = [];
  for (const b of blocks) {
    if (familyOf(b.cidr) !== family) continue;
    let parts = [bounds(b.cidr)];
    for (const e of b.except ?? []) {
      if (familyOf(e) !== family) continue;
      const [lo, hi] = bounds(e);
      parts = parts.flatMap(([a, z]): [bigint, bigint][] => (hi < a || lo > z ? [[a, z]] : [...(lo > a ? [[a, lo - 1n] as [bigint, bigint]] : []), ...(hi < z ? [[hi + 1n, z] as [bigint, bigint]] : [])]));
    }
    ranges.push(...parts);
  }
  ranges.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1] + 1n) last[1] = r[1] > last[1] ? r[1] : last[1];
    else merged.push([r[0], r[1]]);
  }
  const bits = family === 4 ? 32 : 128;
  return merged.map(([lo, hi]) => {
    const size = hi - lo + 1n;
    // A prefix: a power-of-two size, aligned.
    if ((size & (size - 1n)) === 0n && lo % size === 0n) return formatCIDR(fromBigInt(lo, family), bits - (size.toString(2).length - 1), family);
    return `${formatIP(fromBigInt(lo, family), family)}-${formatIP(fromBigInt(hi, family), family)}`;
  });
}
