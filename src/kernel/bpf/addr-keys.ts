// How the fast path's maps key addresses: one 16-byte form for both families (an IPv4
// address as IPv4-mapped IPv6, ::ffff:a.b.c.d), so that one map and one lookup serve both.
import { formatIP, parseCIDR, parseIP } from "../../net/ip.ts";

export const ADDR_KEY_SIZE = 16;
/** An LPM trie's key: the prefix length (u32, host order), then the 16-byte address. */
export const LPM_KEY_SIZE = 4 + ADDR_KEY_SIZE;
const V4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

export function addrKey(ip: string): Uint8Array {
  const a = parseIP(ip);
  if (a.family === 6) return a.bytes;
  return Uint8Array.from([...V4_MAPPED, ...a.bytes]);
}

function isV4Mapped(k: Uint8Array): boolean {
  return V4_MAPPED.every((b, i) => k[i] === b);
}

export function keyAddr(k: Uint8Array): string {
  return isV4Mapped(k) ? formatIP(k.subarray(12, 16), 4) : formatIP(k, 6);
}

export function lpmKey(cidr: string): Uint8Array {
  const c = parseCIDR(cidr);
  const key = new Uint8Array(LPM_KEY_SIZE);
  new DataView(key.buffer).setUint32(0, c.family === 4 ? 96 + c.prefixLen : c.prefixLen, true);
  key.set(addrKey(formatIP(c.bytes, c.family)), 4);
  return key;
}

export function keyCidr(k: Uint8Array): string {
  const len = new DataView(k.buffer, k.byteOffset).getUint32(0, true);
  const addr = k.subarray(4, 4 + ADDR_KEY_SIZE);
  return isV4Mapped(addr) && len >= 96 ? `${keyAddr(addr)}/${len - 96}` : `${keyAddr(addr)}/${len}`;
}
