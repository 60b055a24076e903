// What the fast path's tc programs share: the checks on the Ethernet and IPv4 headers that
// send a packet to the stack, the TTL decrement and MAC rewrite routing would do, and the
// count of every verdict in the counters map on the way out.
//
// Regs, in every program: r6 the context (__sk_buff), r7 the packet's first byte,
// r8 and r9 free across calls (r9 holds the destination's map value). On the way out r6
// holds the return value and r8 the verdict's slot.
import { Asm, R, type Reg } from "./asm.ts";
import { kfuncId } from "./btf.ts";
import { VERDICT_SLOT, type Verdict } from "./verdicts.ts";

/** Helper numbers (include/uapi/linux/bpf.h). */
export const HELPER = {
  mapLookupElem: 1, skbStoreBytes: 9, l3CsumReplace: 10, skbChangeType: 32, fibLookup: 69, redirectNeigh: 152, redirectPeer: 155,
} as const;
/**
 * The verdict for a packet that takes the stack: TC_ACT_UNSPEC, "not mine", not TC_ACT_OK. On
 * tcx it is "next": the device's later programs and its clsact/ingress filters (a chained
 * bandwidth plugin's redirect to its ifb, another tool's filter) still run, then the stack;
 * TC_ACT_OK would end the device's ingress there and skip them. On a clsact filter it goes on
 * to the next filter, and past the last to the stack, as OK would.
 */
export const TC_ACT_UNSPEC = -1;
export const PACKET_HOST = 0;
/** struct __sk_buff offsets. */
export const SKB = { pktType: 4, ifindex: 40, data: 76, dataEnd: 80, gsoSize: 176 } as const;
export const ETH_HLEN = 14;
export const IP = { verIhl: ETH_HLEN + 0, tos: ETH_HLEN + 1, totLen: ETH_HLEN + 2, fragOff: ETH_HLEN + 6, ttl: ETH_HLEN + 8, proto: ETH_HLEN + 9, check: ETH_HLEN + 10, saddr: ETH_HLEN + 12, daddr: ETH_HLEN + 16 } as const;
export const IP6 = { version: ETH_HLEN + 0, payloadLen: ETH_HLEN + 4, nextHeader: ETH_HLEN + 6, hopLimit: ETH_HLEN + 7, saddr: ETH_HLEN + 8, daddr: ETH_HLEN + 24 } as const;
/** Per family: the first byte after its (option-less) header, the header's length, where the protocol and length are. */
export const L3 = {
  4: { l4: ETH_HLEN + 20, hlen: 20, proto: IP.proto, len: IP.totLen, lenIsPayload: false },
  6: { l4: ETH_HLEN + 40, hlen: 40, proto: IP6.nextHeader, len: IP6.payloadLen, lenIsPayload: true },
} as const;
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, FRAGMENT: 44, ICMPV6: 58, SCTP: 132 } as const;
/**
 * Stack slots (offsets from the frame pointer): the source and destination as map keys
 * (16 bytes: IPv4 as IPv4-mapped IPv6), the family (4 or 6), an LPM key (prefix length +
 * 16 bytes), struct bpf_redir_neigh (20 bytes), struct bpf_fib_lookup (64 bytes).
 */
/*
 * SLOT.ctTuple and SLOT.ctOpts share SLOT.fib's bytes: a program uses one, then the other.
 */
export const SLOT = { saddr: -16, daddr: -32, scratch: -36, countKey: -40, family: -48, lpmKey: -72, neigh: -96, fib: -160, ctTuple: -160, ctOpts: -120 } as const;
/** bpf_ct_opts as this kernel's older size (netns_id, error, l4proto, dir, reserved): every kernel with the kfunc takes it. */
const CT_OPTS_SIZE = 12;
/** bpf_ct_opts.netns_id: the namespace of the packet's device. */
const BPF_F_CURRENT_NETNS = -1;
/** An IPv4 address's first 12 bytes as IPv4-mapped IPv6 (0 ... 0 ff ff), the last 4 read as a little-endian word. */
const V4_MAPPED_WORD = 0xffff0000 | 0;

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

  private labels = 0;
  /** A label of its own for each use of an emitter. */
  private fresh(name: string): string {
    return `${name}_${this.labels++}`;
  }

  /**
   * The program's start: context and packet in r6 and r7; an Ethernet frame with IPv4
   * without options, or IPv6 whose next header is TCP, UDP or SCTP (no extension header);
   * not a fragment, not ICMP or ICMPv6 (errors, neighbour discovery), TTL or hop limit above
   * 1; or the stack. The source and destination are left as map keys in SLOT.saddr and
   * SLOT.daddr, the family (4 or 6) in SLOT.family.
   */
  l3Header(): void {
    const { a } = this;
    const { r1, r2, r3, r6, r7, fp } = R;
    const [v4, v6, parsed] = [this.fresh("v4"), this.fresh("v6"), this.fresh("parsed")];
    a.movReg(r6, r1);
    a.load("w", r7, r6, SKB.data);
    a.load("w", r2, r6, SKB.dataEnd);
    a.movReg(r3, r7).alu("add", r3, ETH_HLEN).jmpReg("gt", r3, r2, this.toStack("not_ip"));
    // Reads are little-endian: 0x0800 in network order reads as 0x0008, 0x86dd as 0xdd86.
    a.load("h", r3, r7, 12).jmp("eq", r3, 0x0008, v4).jmp("eq", r3, 0xdd86, v6).goto(this.toStack("not_ip"));

    a.label(v4);
    a.movReg(r3, r7).alu("add", r3, L3[4].l4).jmpReg("gt", r3, r2, this.toStack("not_ip"));
    a.load("b", r3, r7, IP.verIhl).jmp("ne", r3, 0x45, this.toStack("ip_header"));
    // MF flag and fragment offset: the low 6 bits of the first byte and all of the second.
    a.load("h", r3, r7, IP.fragOff).alu("and", r3, 0xff3f).jmp("ne", r3, 0, this.toStack("fragment"));
    a.load("b", r3, r7, IP.proto).jmp("eq", r3, IPPROTO.ICMP, this.toStack("icmp"));
    a.load("b", r3, r7, IP.ttl).jmp("le", r3, 1, this.toStack("ttl"));
    for (const [slot, at] of [[SLOT.saddr, IP.saddr], [SLOT.daddr, IP.daddr]] as const) {
      a.mov(r3, 0).store("dw", fp, slot, r3).mov(r3, V4_MAPPED_WORD).store("w", fp, slot + 8, r3);
      a.load("w", r3, r7, at).store("w", fp, slot + 12, r3);
    }
    a.mov(r3, 4).store("w", fp, SLOT.family, r3).goto(parsed);

    a.label(v6);
    a.movReg(r3, r7).alu("add", r3, L3[6].l4).jmpReg("gt", r3, r2, this.toStack("not_ip"));
    a.load("b", r3, r7, IP6.version).alu("and", r3, 0xf0).jmp("ne", r3, 0x60, this.toStack("not_ip"));
    const l4ok = this.fresh("l4ok");
    a.load("b", r3, r7, IP6.nextHeader);
    a.jmp("eq", r3, IPPROTO.TCP, l4ok).jmp("eq", r3, IPPROTO.UDP, l4ok).jmp("eq", r3, IPPROTO.SCTP, l4ok);
    a.jmp("eq", r3, IPPROTO.FRAGMENT, this.toStack("fragment")).jmp("eq", r3, IPPROTO.ICMPV6, this.toStack("icmp"));
    // Hop-by-hop, routing, destination options, ...: the stack reads them.
    a.goto(this.toStack("ip_header"));
    a.label(l4ok);
    a.load("b", r3, r7, IP6.hopLimit).jmp("le", r3, 1, this.toStack("ttl"));
    for (const [slot, at] of [[SLOT.saddr, IP6.saddr], [SLOT.daddr, IP6.daddr]] as const) {
      a.load("dw", r3, r7, at).store("dw", fp, slot, r3).load("dw", r3, r7, at + 8).store("dw", fp, slot + 8, r3);
    }
    a.mov(r3, 6).store("w", fp, SLOT.family, r3);
    a.label(parsed);
  }

  /** Jumps to v6 when the packet is IPv6 (reads SLOT.family into r1). */
  ifV6(v6: string): void {
    this.a.load("w", R.r1, R.fp, SLOT.family).jmp("eq", R.r1, 6, v6);
  }

  /** The 16 bytes at fp + from copied to fp + to, by words (either may be 4-aligned only). */
  copyKey(from: number, to: number): void {
    for (let i = 0; i < 16; i += 4) this.a.load("w", R.r1, R.fp, from + i).store("w", R.fp, to + i, R.r1);
  }

  /** r0 = the host-gw routes entry for the address key at slot (a host route: prefix length 128). */
  lookupLpm(mapFd: number, slot: number): void {
    this.a.mov(R.r1, 128).store("w", R.fp, SLOT.lpmKey, R.r1);
    this.copyKey(slot, SLOT.lpmKey + 4);
    this.lookup(mapFd, SLOT.lpmKey);
  }

  /**
   * Whether conntrack knows the packet's flow (bpf_skb_ct_lookup, either direction): a flow it
   * knows went through the stack, which may translate it (Service DNAT and its replies,
   * hostPort), so it takes the stack again. Only TCP and UDP can be looked up: anything else
   * takes the stack. Needs the packet pointer in r7.
   */
  conntrackUnknown(): void {
    const { a } = this;
    const { r0, r1, r2, r3, r4, r5, r6, r7, fp } = R;
    const [lookup, release] = [kfuncId("bpf_skb_ct_lookup"), kfuncId("bpf_ct_release")];
    const [v6, unknown] = [this.fresh("ct6"), this.fresh("ct_unknown")];
    this.ifV6(v6);
    for (const family of [4, 6] as const) {
      const l3 = L3[family];
      if (family === 6) a.label(v6);
      const l4ok = this.fresh("ct_l4");
      a.load("b", r3, r7, l3.proto).jmp("eq", r3, IPPROTO.TCP, l4ok).jmp("ne", r3, IPPROTO.UDP, this.toStack("not_tcp_udp"));
      a.label(l4ok);
      a.load("w", r2, r6, SKB.dataEnd).movReg(r1, r7).alu("add", r1, l3.l4 + 4).jmpReg("gt", r1, r2, this.toStack("not_ip"));
      // struct bpf_ct_opts: netns_id, error, then l4proto, dir and reserved in one little-endian word.
      a.mov(r1, BPF_F_CURRENT_NETNS).store("w", fp, SLOT.ctOpts, r1).mov(r1, 0).store("w", fp, SLOT.ctOpts + 4, r1).store("w", fp, SLOT.ctOpts + 8, r3);
      // struct bpf_sock_tuple: addresses, then the ports as they are in the packet.
      const tupleSize = family === 4 ? 12 : 36;
      if (family === 4) {
        a.load("w", r1, fp, SLOT.saddr + 12).store("w", fp, SLOT.ctTuple, r1);
        a.load("w", r1, fp, SLOT.daddr + 12).store("w", fp, SLOT.ctTuple + 4, r1);
      } else {
        this.copyKey(SLOT.saddr, SLOT.ctTuple);
        this.copyKey(SLOT.daddr, SLOT.ctTuple + 16);
      }
      a.load("w", r1, r7, l3.l4).store("w", fp, SLOT.ctTuple + tupleSize - 4, r1);
      a.movReg(r1, r6).movReg(r2, fp).alu("add", r2, SLOT.ctTuple).mov(r3, tupleSize).movReg(r4, fp).alu("add", r4, SLOT.ctOpts).mov(r5, CT_OPTS_SIZE);
      a.callKfunc(lookup);
      a.jmp("eq", r0, 0, unknown);
      a.movReg(r1, r0).callKfunc(release).goto(this.toStack("conntrack"));
    }
    a.label(unknown);
  }

  /** r0 = lookup(map, fp + slot). */
  lookup(mapFd: number, slot: number): void {
    this.a.loadMap(R.r1, mapFd).movReg(R.r2, R.fp).alu("add", R.r2, slot).call(HELPER.mapLookupElem);
  }

  /** Compares the 6 bytes at packet offset `at` with those at `reg + off`; unequal goes to label. */
  macDiffers(at: number, reg: Reg, off: number, label: string): void {
    const { r1, r2, r7 } = R;
    this.a.load("w", r1, r7, at).load("w", r2, reg, off).jmpReg("ne", r1, r2, label);
    this.a.load("h", r1, r7, at + 4).load("h", r2, reg, off + 4).jmpReg("ne", r1, r2, label);
  }

  /**
   * TTL or hop limit - 1, as routing does (it is known above 1). IPv4: the checksum fixed
   * up; the 16-bit word at the TTL is TTL | protocol << 8 as read, so subtracting one
   * changes only the TTL. IPv6 has no header checksum. Packet pointers are invalid afterwards
   * (helpers that write the packet).
   */
  decrementTtl(): void {
    const { a } = this;
    const { r1, r2, r3, r4, r5, r6, r7, r8, fp } = R;
    const [v6, store] = [this.fresh("hop6"), this.fresh("store_ttl")];
    this.ifV6(v6);
    a.load("h", r8, r7, IP.ttl);
    a.movReg(r1, r6).mov(r2, IP.check).movReg(r3, r8).movReg(r4, r8).alu("sub", r4, 1).mov(r5, 2).call(HELPER.l3CsumReplace);
    a.movReg(r3, r8).alu("sub", r3, 1).store("b", fp, SLOT.scratch, r3).mov(r2, IP.ttl).goto(store);
    a.label(v6);
    a.load("b", r3, r7, IP6.hopLimit).alu("sub", r3, 1).store("b", fp, SLOT.scratch, r3).mov(r2, IP6.hopLimit);
    a.label(store);
    a.movReg(r1, r6).movReg(r3, fp).alu("add", r3, SLOT.scratch).mov(r4, 1).mov(r5, 0).call(HELPER.skbStoreBytes);
  }

  /** Destination then source MAC from the 12 bytes at reg (a plain pod's value: its MAC, then its gateway's). */
  rewriteMacs(reg: Reg): void {
    const { r1, r2, r3, r4, r5, r6 } = R;
    this.a.movReg(r1, r6).mov(r2, 0).movReg(r3, reg).mov(r4, 12).mov(r5, 0).call(HELPER.skbStoreBytes);
  }

  /** Into the namespace of the pod behind the host device whose ifindex is at reg + off. */
  redirectPeer(reg: Reg, off: number, v: Verdict): void {
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
    for (const v of this.stackVerdicts) a.label(`stack_${v}`).mov(r6, TC_ACT_UNSPEC).mov(r8, VERDICT_SLOT[v]).goto("out");
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
