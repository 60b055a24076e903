// Crafted Ethernet + IPv4 frames for running the fast path's programs with BPF_PROG_TEST_RUN,
// and what the tests read back from them.
import type { Verdict, VerdictCounters } from "../../src/kernel/bpf/index.ts";
import { parseIP } from "../../src/net/ip.ts";

export interface Pkt {
  dstMac: string;
  srcMac: string;
  src: string;
  dst: string;
  proto?: number;
  ttl?: number;
  frag?: number;
  ihl?: number;
  etherType?: number;
  /** IPv6 (the addresses are IPv6): proto is the next header, ttl the hop limit */
  /** bytes after the IP header (default 12: a UDP header and 4 bytes) */
  payload?: number;
}

/** To the stack: TC_ACT_UNSPEC (-1), as the test run reports a return value (u32). */
export const TC_ACT_STACK = 0xffffffff;
export const TC_ACT_REDIRECT = 7;

export function macBytes(m: string): number[] {
  return m.split(":").map((h) => parseInt(h, 16));
}

function ipBytes(ip: string): number[] {
  return [...parseIP(ip).bytes];
}

/** The Internet checksum of b (0 over a header that carries a valid one). */
export function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An Ethernet frame with IPv4, or IPv6 when the addresses are IPv6. */
export function packet(o: Pkt): Uint8Array {
  if (o.src.includes(":")) return packet6(o);
  const ihl = o.ihl ?? 5;
  const ip = new Uint8Array(ihl * 4 + (o.payload ?? 12));
  ip.set([0x40 | ihl, 0, ip.length >> 8, ip.length & 0xff, 0x12, 0x34, (o.frag ?? 0) >> 8, (o.frag ?? 0) & 0xff, o.ttl ?? 64, o.proto ?? 17, 0, 0, ...ipBytes(o.src), ...ipBytes(o.dst)]);
  const sum = checksum(ip.subarray(0, ihl * 4));
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  const et = o.etherType ?? 0x0800;
  return Uint8Array.from([...macBytes(o.dstMac), ...macBytes(o.srcMac), et >> 8, et & 0xff, ...ip]);
}

function packet6(o: Pkt): Uint8Array {
  const payload = o.payload ?? 12;
  const ip = new Uint8Array(40 + payload);
  ip.set([0x60, 0, 0, 0, payload >> 8, payload & 0xff, o.proto ?? 17, o.ttl ?? 64, ...ipBytes(o.src), ...ipBytes(o.dst)]);
  return Uint8Array.from([...macBytes(o.dstMac), ...macBytes(o.srcMac), 0x86, 0xdd, ...ip]);
}

export const hexMac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** Runs fn and returns its result with what it added to each counter that moved. */
export function counted<T>(counters: VerdictCounters, fn: () => T): { r: T; counted: Partial<Record<Verdict, number>> } {
  const before = counters.read();
  const r = fn();
  const moved: Partial<Record<Verdict, number>> = {};
  counters.read().forEach((c, i) => {
    if (c.packets !== before[i]!.packets) moved[c.key] = c.packets - before[i]!.packets;
  });
  return { r, counted: moved };
}
