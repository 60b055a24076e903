// What the fast path's tc programs share: the checks on the Ethernet and IPv4 headers that
// send a packet to the stack, the TTL decrement and MAC rewrite routing would do, and the
// count of every verdict in the counters map on the way out.
//
// Registers, in every program: r6 the context (__sk_buff), r7 the packet's first byte,
// r8 and r9 free across calls (r9 holds the destination's map value). On the way out r6
// holds the return value and r8 the verdict's slot.
import { Asm, R } from "./asm.ts";
import { VERDICT_SLOT, type Verdict } from "./verdicts.ts";

/** Helper numbers (include/uapi/linux/bpf.h). */
export const HELPER = {
  mapLookupElem: 1, skbStoreBytes: 9, l3CsumReplace: 10, skbChangeType: 32, fibLookup: 69, redirectNeigh: 152, redirectPeer: 155,
} as const;
export const TC_ACT_OK = 0;
export const PACKET_HOST = 0;
/** struct __sk_buff offsets. */
export const SKB = { pktType: 4, ifindex: 40, data: 76, dataEnd: 80, gsoSize: 176 } as const;
export const ETH_HLEN = 14;
export const IP = { verIhl: ETH_HLEN + 0, tos: ETH_HLEN + 1, totLen: ETH_HLEN + 2, fragOff: ETH_HLEN + 6, ttl: ETH_HLEN + 8, proto: ETH_HLEN + 9, check: ETH_HLEN + 10, saddr: ETH_HLEN + 12, daddr: ETH_HLEN + 16 } as const;
/** The first byte after a 20-byte IPv4 header. */
export const L4 = ETH_HLEN + 20;
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;
/** Stack slots (offsets from the frame pointer) the programs use. */
export const SLOT = { saddr: -4, daddr: -8, scratch: -12, countKey: -16, fib: -80, neigh: -104, lpmKey: -112 } as const;

export class TcProgram {
  readonly a = new Asm();
  private readonly stackVerdicts = new Set<Verdict>();

  /** counters: the verdict counters map's fd, or none (nothing counted). */
  constructor(private readonly countersFd?: number) {}

  /** The label that returns the packet to the stack, counted as v. */
  toStack(v: Verdict): string {
    this.stackVerdicts.add(v);
    return `stack_${v}`;
  }

  /** After a redirect helper: its result (r0) is the return value, counted as v. */
  redirected(v: Verdict): void {
    this.a.movReg(R.r6, R.r0).mov(R.r8, VERDICT_SLOT[v]).goto("out");
  }

  /**
   * The program's start: context and packet in r6 and r7; an Ethernet frame with IPv4
   * without options, not a fragment, not ICMP, TTL above 1, or the stack. The source and
   * destination addresses are left in SLOT.saddr and SLOT.daddr (network order).
   */
  ipv4Header(): void {
    const { a } = this;
    const { r1, r2, r3, r6, r7, fp } = R;
    a.movReg(r6, r1);
    a.load("w", r7, r6, SKB.data);
    a.load("w", r2, r6, SKB.dataEnd);
    a.movReg(r3, r7).alu("add", r3, L4);
    a.jmpReg("gt", r3, r2, this.toStack("not_ipv4"));
    // Reads are little-endian: 0x0800 in network order reads as 0x0008.
    a.load("h", r3, r7, 12).jmp("ne", r3, 0x0008, this.toStack("not_ipv4"));
    a.load("b", r3, r7, IP.verIhl).jmp("ne", r3, 0x45, this.toStack("ip_header"));
    // MF flag and fragment offset: the low 6 bits of the first byte and all of the second.
    a.load("h", r3, r7, IP.fragOff).alu("and", r3, 0xff3f).jmp("ne", r3, 0, this.toStack("fragment"));
    a.load("b", r3, r7, IP.proto).jmp("eq", r3, IPPROTO.ICMP, this.toStack("icmp"));
    a.load("b", r3, r7, IP.ttl).jmp("le", r3, 1, this.toStack("ttl"));
    a.load("w", r3, r7, IP.saddr).store("w", fp, SLOT.saddr, r3);
    a.load("w", r3, r7, IP.daddr).store("w", fp, SLOT.daddr, r3);
  }

  /** r0 = lookup(map, fp + slot). */
  lookup(mapFd: number, slot: number): void {
    this.a.loadMap(R.r1, mapFd).movReg(R.r2, R.fp).alu("add", R.r2, slot).call(HELPER.mapLookupElem);
  }

  /** Compares the 6 bytes at packet offset `at` with those at `reg + off`; unequal goes to label. */
  macDiffers(at: number, reg: (typeof R)[keyof typeof R], off: number, label: string): void {
    const { r1, r2, r7 } = R;
    this.a.load("w", r1, r7, at).load("w", r2, reg, off).jmpReg("ne", r1, r2, label);
    this.a.load("h", r1, r7, at + 4).load("h", r2, reg, off + 4).jmpReg("ne", r1, r2, label);
  }

  /**
   * TTL - 1 with the checksum fixed up, as routing does (the TTL is known above 1). The
   * 16-bit word at the TTL is TTL | protocol << 8 as read, so subtracting one changes only
   * the TTL. Packet pointers are invalid afterwards (helpers that write the packet).
   */
  decrementTtl(): void {
    const { a } = this;
    const { r1, r2, r3, r4, r5, r6, r7, r8, fp } = R;
    a.load("h", r8, r7, IP.ttl);
    a.movReg(r1, r6).mov(r2, IP.check).movReg(r3, r8).movReg(r4, r8).alu("sub", r4, 1).mov(r5, 2).call(HELPER.l3CsumReplace);
    a.movReg(r3, r8).alu("sub", r3, 1).store("h", fp, SLOT.scratch, r3);
    a.movReg(r1, r6).mov(r2, IP.ttl).movReg(r3, fp).alu("add", r3, SLOT.scratch).mov(r4, 1).mov(r5, 0).call(HELPER.skbStoreBytes);
  }

  /** Destination then source MAC from the 12 bytes at reg (a plain pod's value: its MAC, then its gateway's). */
  rewriteMacs(reg: (typeof R)[keyof typeof R]): void {
    const { r1, r2, r3, r4, r5, r6 } = R;
    this.a.movReg(r1, r6).mov(r2, 0).movReg(r3, reg).mov(r4, 12).mov(r5, 0).call(HELPER.skbStoreBytes);
  }

  /** Into the namespace of the pod behind the host device whose ifindex is at reg + off. */
  redirectPeer(reg: (typeof R)[keyof typeof R], off: number, v: Verdict): void {
    const { a } = this;
    const { r1, r2, r6 } = R;
    // The frame reached the host device addressed to someone else; in the pod it is for the pod.
    a.movReg(r1, r6).mov(r2, PACKET_HOST).call(HELPER.skbChangeType);
    a.load("w", r1, reg, off).mov(r2, 0).call(HELPER.redirectPeer);
    this.redirected(v);
  }

  /** The stack exits, then the count and the return. */
  assemble(): Uint8Array {
    const { a } = this;
    const { r0, r1, r2, r6, r8, fp } = R;
    for (const v of this.stackVerdicts) a.label(`stack_${v}`).mov(r6, TC_ACT_OK).mov(r8, VERDICT_SLOT[v]).goto("out");
    a.label("out");
    if (this.countersFd !== undefined) {
      a.store("w", fp, SLOT.countKey, r8);
      this.lookup(this.countersFd, SLOT.countKey);
      a.jmp("eq", r0, 0, "return");
      // Per-CPU: this CPU's own copy, no atomic needed (tc programs run with migration off).
      a.load("dw", r1, r0, 0).alu("add", r1, 1).store("dw", r0, 0, r1);
    }
    a.label("return").movReg(r0, r6).exit();
    return a.assemble();
  }
}
