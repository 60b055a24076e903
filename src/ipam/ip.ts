// IP addresses as (family, bigint) so IPv4 and IPv6 share one code path for parsing,
// arithmetic and formatting. Text output matches Go's net.IP.String(), because host-local
// uses that text as the reservation file name and both must agree byte for byte.

export type Family = 4 | 6;

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

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseV4Value(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Leading zeros are refused, as Go does: "010" would mean octal to some tools.
    if (!V4_OCTET.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseV6Groups(text: string): bigint[] | undefined {
  if (text === "") return [];
  const parts = text.split(":");
  const groups: bigint[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (i === parts.length - 1 && p.includes(".")) {
      const v4 = parseV4Value(p);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (V6_GROUP.test(p)) {
      groups.push(BigInt(parseInt(p, 16)));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseV6Value(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = parseV6Groups(halves[0]);
  const tail = halves.length === 2 ? parseV6Groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const given = head.length + tail.length;
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const groups = [...head, ...Array<bigint>(8 - given).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses a bare address ("10.0.0.1", "fd00::1"); undefined when it is not one. */
export function parseIp(text: string): Ip | undefined {
  if (text.includes(":")) {
    const value = parseV6Value(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4Value(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Parses "addr/prefix"; undefined when it is not a CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const len = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(len)) return undefined;
  const prefix = Number(len);
  return prefix > bitsOf(ip.family) ? undefined : { ip, prefix };
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
