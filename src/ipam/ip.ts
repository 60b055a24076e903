// The IPAM's view of addresses: (family, bigint), for range arithmetic, parsed by the one
// parser (src/net/ip.ts). Text output matches Go's net.IP.String(), not glibc's: host-local
// uses that text as the reservation file name and both must agree byte for byte.
import { parseCIDR, toBigInt, tryParseIP, type Family } from "../net/ip.ts";

export type { Family };

export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

export interface Cidr {
  /** The address as written (host bits kept, like Go's types.ParseCIDR). */
  readonly ip: Ip;
  readonly prefix: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

/** Parses a bare address ("10.0.0.1", "fd00::1"); undefined when it is not one. */
export function parseIp(text: string): Ip | undefined {
  const ip = tryParseIP(text);
  return ip && { family: ip.family, value: toBigInt(ip.bytes) };
}

/** Parses "addr/prefix" (the prefix is required here); undefined when it is not a CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  if (!text.includes("/")) return undefined;
  let c;
  try {
    c = parseCIDR(text);
  } catch {
    return undefined;
  }
  return { ip: { family: c.family, value: toBigInt(c.bytes) }, prefix: c.prefixLen };
}

/** Accepts "addr" or "addr/prefix" (the `ips` capability uses CIDRs) and returns the address. */
export function parseIpOrCidr(text: string): Ip | undefined {
  return text.includes("/") ? parseCidr(text)?.ip : parseIp(text);
}

function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefix)) - 1n;
}

/** First address of the subnet containing `ip`. */
export function networkOf(ip: Ip, prefix: number): bigint {
  return ip.value & ~hostMask(ip.family, prefix);
}

/** Last address of the subnet containing `ip` (the IPv4 broadcast). */
export function lastOf(ip: Ip, prefix: number): bigint {
  return networkOf(ip, prefix) | hostMask(ip.family, prefix);
}

function formatV6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups, first one on a tie, only if at least two long (RFC 5952, Go).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function formatIp(ip: Ip): string {
  if (ip.family === 6) return formatV6(ip.value);
  return [24n, 16n, 8n, 0n].map((s) => ((ip.value >> s) & 0xffn).toString()).join(".");
}

export const ipOf = (family: Family, value: bigint): Ip => ({ family, value });

export function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** True for ::ffff:0:0/96, which Go silently turns into IPv4 (and host-local with it). */
export function isV4Mapped(ip: Ip): boolean {
  return ip.family === 6 && ip.value >> 32n === 0xffffn;
}
