// CIDR arithmetic the cluster view and the reconcilers share, on top of src/kernel's parser.
import { formatCIDR, formatIP, maskCIDR, parseCIDR, tryParseIP, type Family } from "../kernel/index.ts";

/** "10.244.1.7/24" -> "10.244.1.0/24"; throws on anything that is not a CIDR. */
export function normalizeCIDR(s: string): string {
  if (!s.includes("/")) throw new TypeError(`cannot parse CIDR "${s}": no prefix length`);
  const c = maskCIDR(parseCIDR(s));
  return formatCIDR(c.bytes, c.prefixLen, c.family);
}

/** The canonical text of an address, or undefined when it is not one. */
export function normalizeIP(s: string): string | undefined {
  const ip = tryParseIP(s);
  return ip && formatIP(ip.bytes, ip.family);
}

export function familyOf(addrOrCidr: string): Family {
  return addrOrCidr.includes(":") ? 6 : 4;
}

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

export function cidrsOverlap(a: string, b: string): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** Normalised, deduplicated, without CIDRs covered by others, sorted: stable text for rulesets. */
export function collapseCIDRs(list: Iterable<string>): string[] {
  const all = [...new Set([...list].map(normalizeCIDR))];
  const kept = all.filter((c) => !all.some((o) => o !== c && cidrContains(o, c)));
  return kept.sort((a, b) => familyOf(a) - familyOf(b) || a.localeCompare(b, "en", { numeric: true }));
}
