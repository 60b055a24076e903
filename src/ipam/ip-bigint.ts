// The IPAM's view of addresses: (family, bigint), for range arithmetic, parsed by the one
// parser (src/net/ip.ts). Text output matches Go's net.IP.String(), not glibc's: host-local
// uses that text as the reservation file name and both must agree byte for byte.
import { formatIP, fromBigInt, parseCIDR, toBigInt, tryParseIP, type Family } from "../net/ip.ts";

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

const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

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

export function formatIp(ip: Ip): string {
  return formatIP(fromBigInt(ip.value, ip.family), ip.family, "go");
}

export const ipOf = (family: Family, value: bigint): Ip => ({ family, value });

export function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** True for ::ffff:0:0/96, which Go silently turns into IPv4 (and host-local with it). */
export function isV4Mapped(ip: Ip): boolean {
  return ip.family === 6 && ip.value >> 32n === 0xffffn;
}
