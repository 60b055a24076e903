// Netlink message encoding and decoding: nlmsghdr, the rtnetlink family headers
// (ifinfomsg, ifaddrmsg, rtmsg, ndmsg), nfnetlink's nfgenmsg and nested attributes, all
// 4-byte aligned and in host byte order (except where the kernel wants network order:
// addresses, ports, and every nftables integer).
// One Writer is reused per socket so building a request allocates nothing.
// Not node:os's endianness(): loading node:os costs a plugin process ~0.2 ms (sys/files.ts).
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Message-type, flag and attribute numbers from linux/netlink.h and linux/rtnetlink.h. */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NLM_F = {
  REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, ECHO: 0x8, DUMP_INTR: 0x10,
  ROOT: 0x100, MATCH: 0x200, DUMP: 0x300,
  REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800,
  CAPPED: 0x100, ACK_TLVS: 0x200,
} as const;
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2 } as const;
/** The first message type free for protocols (linux/netlink.h NLMSG_MIN_TYPE). */
export const NLMSG_MIN_TYPE = 0x10;
const NFNETLINK_V0 = 0;
export const NFGENMSG_LEN = 4;

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;

export const IFLA = {
  ADDRESS: 1, BROADCAST: 2, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, PROTINFO: 12, TXQLEN: 13,
  OPERSTATE: 16, LINKINFO: 18, NET_NS_PID: 19, IFALIAS: 20, NET_NS_FD: 28, EXT_MASK: 29, PROMISCUITY: 30,
  LINK_NETNSID: 37,
} as const;
export const IFLA_INFO = { KIND: 1, DATA: 2, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;
export const VETH_INFO_PEER = 1;
/** linux/if_link.h IFLA_NETKIT_*: the peer's ifinfomsg, default policies, L2/L3 mode. */
export const IFLA_NETKIT = { PEER_INFO: 1, PRIMARY: 2, POLICY: 3, PEER_POLICY: 4, MODE: 5 } as const;
export const IFLA_VXLAN = { ID: 1, GROUP: 2, LINK: 3, LOCAL: 4, LEARNING: 7, PORT: 15, GROUP6: 16, LOCAL6: 17 } as const;
export const IFLA_BRPORT = { MODE: 4, LEARNING: 8 } as const;
export const IFF = { UP: 0x1, PROMISC: 0x100 } as const;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, FLAGS: 8 } as const;
export const IFA_F = { NODAD: 0x02, TENTATIVE: 0x40, PERMANENT: 0x80 } as const;

export const RTA = {
  DST: 1, SRC: 2, IIF: 3, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, METRICS: 8, MULTIPATH: 9,
  TABLE: 15,
} as const;
export const RTAX = { MTU: 2, ADVMSS: 8 } as const;
export const RTNH_F_ONLINK = 4;
export const RTM_F_CLONED = 0x200;
export const RT_TABLE = { UNSPEC: 0, MAIN: 254, LOCAL: 255 } as const;
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
export const RTPROT = { UNSPEC: 0, KERNEL: 2, BOOT: 3, STATIC: 4 } as const;
export const RTN_NAMES = [
  "unspec", "unicast", "local", "broadcast", "anycast", "multicast",
  "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve",
] as const;

export const NDA = { DST: 1, LLADDR: 2, VLAN: 5, PORT: 6, VNI: 7, IFINDEX: 8, MASTER: 9 } as const;
export const NUD = {
  INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20,
  NOARP: 0x40, PERMANENT: 0x80,
} as const;
export const NTF = { USE: 0x1, SELF: 0x2, MASTER: 0x4, PROXY: 0x8, EXT_LEARNED: 0x10, ROUTER: 0x80 } as const;

/** Sizes of the fixed family headers that follow nlmsghdr. */
export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;
export const RTMSG_LEN = 12;
export const NDMSG_LEN = 12;

/**
 * Builds one netlink message into a growable, reused buffer. Callers write the family
 * header with the struct helpers and then attributes; finish() patches nlmsg_len.
 */
export class Writer {
  buf: Buffer;
  private dv: DataView;
  pos = 0;
  /** Where the message being built starts: 0, or later in a batch (next()). */
  private msgStart = 0;

  constructor(size = 4096) {
    this.buf = Buffer.alloc(size);
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.dv = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** Starts a message: writes nlmsghdr with a zero length, to be patched by finish(). */
  begin(type: number, flags: number, seq: number): this {
    this.pos = 0;
    this.msgStart = 0;
    return this.header(type, flags, seq);
  }

  /**
   * Closes the current message and starts another one behind it in the same buffer, so
   * several messages go to the kernel in one datagram (an nfnetlink batch).
   */
  next(type: number, flags: number, seq: number): this {
    this.finish();
    this.pos = align4(this.pos);
    this.msgStart = this.pos;
    return this.header(type, flags, seq);
  }

  private header(type: number, flags: number, seq: number): this {
    const at = this.pos;
    this.ensure(NLMSG_HDRLEN);
    this.dv.setUint32(at, 0, LE);
    this.dv.setUint16(at + 4, type, LE);
    this.dv.setUint16(at + 6, flags, LE);
    this.dv.setUint32(at + 8, seq, LE);
    this.dv.setUint32(at + 12, 0, LE);
    this.pos = at + NLMSG_HDRLEN;
    return this;
  }

  /** Patches nlmsg_len of the current message and returns the length of the whole buffer. */
  finish(): number {
    this.dv.setUint32(this.msgStart, this.pos - this.msgStart, LE);
    return this.pos;
  }

  u8(v: number): this { this.ensure(1); this.dv.setUint8(this.pos, v); this.pos += 1; return this; }
  u16(v: number): this { this.ensure(2); this.dv.setUint16(this.pos, v, LE); this.pos += 2; return this; }
  u32(v: number): this { this.ensure(4); this.dv.setUint32(this.pos, v >>> 0, LE); this.pos += 4; return this; }
  i32(v: number): this { this.ensure(4); this.dv.setInt32(this.pos, v, LE); this.pos += 4; return this; }

  ifinfomsg(o: { family?: number; index?: number; flags?: number; change?: number }): this {
    return this.u8(o.family ?? 0).u8(0).u16(0).i32(o.index ?? 0).u32(o.flags ?? 0).u32(o.change ?? 0);
  }
  ifaddrmsg(o: { family: number; prefixLen?: number; flags?: number; scope?: number; index?: number }): this {
    return this.u8(o.family).u8(o.prefixLen ?? 0).u8(o.flags ?? 0).u8(o.scope ?? 0).u32(o.index ?? 0);
  }
  rtmsg(o: {
    family: number; dstLen?: number; srcLen?: number; tos?: number; table?: number;
    protocol?: number; scope?: number; type?: number; flags?: number;
  }): this {
    return this.u8(o.family).u8(o.dstLen ?? 0).u8(o.srcLen ?? 0).u8(o.tos ?? 0).u8(o.table ?? 0)
      .u8(o.protocol ?? 0).u8(o.scope ?? 0).u8(o.type ?? 0).u32(o.flags ?? 0);
  }
  ndmsg(o: { family: number; index?: number; state?: number; flags?: number; type?: number }): this {
    return this.u8(o.family).u8(0).u16(0).i32(o.index ?? 0).u16(o.state ?? 0).u8(o.flags ?? 0).u8(o.type ?? 0);
  }
  /** nfnetlink's header: family, version 0, and res_id in network order. */
  nfgenmsg(o: { family: number; resId?: number }): this {
    this.u8(o.family).u8(NFNETLINK_V0);
    this.ensure(2);
    this.dv.setUint16(this.pos, o.resId ?? 0, false);
    this.pos += 2;
    return this;
  }

  private attrHeader(type: number, payloadLen: number): void {
    this.ensure(align4(NLA_HDRLEN + payloadLen));
    this.dv.setUint16(this.pos, NLA_HDRLEN + payloadLen, LE);
    this.dv.setUint16(this.pos + 2, type, LE);
    this.pos += NLA_HDRLEN;
  }
  private pad(): void {
    const end = align4(this.pos);
    while (this.pos < end) this.buf[this.pos++] = 0;
  }

  attrBytes(type: number, bytes: Uint8Array): this {
    this.attrHeader(type, bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    this.pad();
    return this;
  }
  attrU8(type: number, v: number): this { this.attrHeader(type, 1); this.dv.setUint8(this.pos, v); this.pos += 1; this.pad(); return this; }
  attrU16(type: number, v: number): this { this.attrHeader(type, 2); this.dv.setUint16(this.pos, v, LE); this.pos += 2; this.pad(); return this; }
  /** A 16-bit value in network order (UDP ports). */
  attrBe16(type: number, v: number): this { this.attrHeader(type, 2); this.dv.setUint16(this.pos, v, false); this.pos += 2; this.pad(); return this; }
  attrU32(type: number, v: number): this { this.attrHeader(type, 4); this.dv.setUint32(this.pos, v >>> 0, LE); this.pos += 4; return this; }
  attrI32(type: number, v: number): this { this.attrHeader(type, 4); this.dv.setInt32(this.pos, v, LE); this.pos += 4; return this; }
  /** A NUL-terminated string attribute. */
  attrStr(type: number, s: string): this {
    const n = Buffer.byteLength(s);
    this.attrHeader(type, n + 1);
    this.buf.write(s, this.pos, n, "utf8");
    this.buf[this.pos + n] = 0;
    this.pos += n + 1;
    this.pad();
    return this;
  }

  /** Opens a nested attribute; pass the returned offset to nestEnd(). */
  nestStart(type: number): number {
    const at = this.pos;
    this.attrHeader(type, 0);
    return at;
  }
  nestEnd(at: number): this {
    // nla_len is 16 bits: a longer nest would silently wrap and corrupt the message.
    if (this.pos - at > 0xffff) throw new RangeError(`netlink attribute too long: ${this.pos - at} bytes`);
    this.dv.setUint16(at, this.pos - at, LE);
    return this;
  }
}

/**
 * The attributes of one message or nest, indexed by type (last occurrence wins).
 * Offsets point into the receive buffer, so read them before the next recv.
 */
export class Attrs {
  private off: number[] = [];
  private len: number[] = [];

  constructor(readonly buf: Buffer, readonly dv: DataView, start: number, end: number) {
    let p = start;
    while (p + NLA_HDRLEN <= end) {
      const l = dv.getUint16(p, LE);
      if (l < NLA_HDRLEN || p + l > end) break;
      const t = dv.getUint16(p + 2, LE) & NLA_TYPE_MASK;
      this.off[t] = p + NLA_HDRLEN;
      this.len[t] = l - NLA_HDRLEN;
      p += align4(l);
    }
  }

  has(t: number): boolean { return this.off[t] !== undefined; }
  size(t: number): number { return this.len[t] ?? 0; }
  u8(t: number): number | undefined { return this.has(t) && this.len[t] >= 1 ? this.dv.getUint8(this.off[t]) : undefined; }
  u16(t: number): number | undefined { return this.has(t) && this.len[t] >= 2 ? this.dv.getUint16(this.off[t], LE) : undefined; }
  be16(t: number): number | undefined { return this.has(t) && this.len[t] >= 2 ? this.dv.getUint16(this.off[t], false) : undefined; }
  u32(t: number): number | undefined { return this.has(t) && this.len[t] >= 4 ? this.dv.getUint32(this.off[t], LE) : undefined; }
  i32(t: number): number | undefined { return this.has(t) && this.len[t] >= 4 ? this.dv.getInt32(this.off[t], LE) : undefined; }
  be32(t: number): number | undefined { return this.has(t) && this.len[t] >= 4 ? this.dv.getUint32(this.off[t], false) : undefined; }
  be64(t: number): bigint | undefined { return this.has(t) && this.len[t] >= 8 ? this.dv.getBigUint64(this.off[t], false) : undefined; }
  /** A copy of the payload (safe to keep after the buffer is reused). */
  bytes(t: number): Uint8Array | undefined {
    return this.has(t) ? Uint8Array.prototype.slice.call(this.buf, this.off[t], this.off[t] + this.len[t]) : undefined;
  }
  str(t: number): string | undefined {
    if (!this.has(t)) return undefined;
    let end = this.off[t] + this.len[t];
    while (end > this.off[t] && this.buf[end - 1] === 0) end--;
    return this.buf.toString("utf8", this.off[t], end);
  }
  nested(t: number, skip = 0): Attrs | undefined {
    return this.has(t) ? new Attrs(this.buf, this.dv, this.off[t] + skip, this.off[t] + this.len[t]) : undefined;
  }
  /**
   * Every attribute inside nest t, each parsed as a nest of its own: for lists whose
   * items repeat one type (NFTA_LIST_ELEM), which the type index would collapse.
   */
  items(t: number): Attrs[] {
    const out: Attrs[] = [];
    if (!this.has(t)) return out;
    const end = this.off[t] + this.len[t];
    for (let p = this.off[t]; p + NLA_HDRLEN <= end; ) {
      const l = this.dv.getUint16(p, LE);
      if (l < NLA_HDRLEN || p + l > end) break;
      out.push(new Attrs(this.buf, this.dv, p + NLA_HDRLEN, p + l));
      p += align4(l);
    }
    return out;
  }
}

/** One received message: its header fields and the bounds of its payload in buf. */
export interface Msg {
  type: number;
  flags: number;
  buf: Buffer;
  dv: DataView;
  /** payload start (after nlmsghdr) and end */
  start: number;
  end: number;
}

export function u8At(m: Msg, o: number): number { return m.dv.getUint8(m.start + o); }
export function u16At(m: Msg, o: number): number { return m.dv.getUint16(m.start + o, LE); }
export function u32At(m: Msg, o: number): number { return m.dv.getUint32(m.start + o, LE); }
export function i32At(m: Msg, o: number): number { return m.dv.getInt32(m.start + o, LE); }

/** Attributes that follow a family header of hdrLen bytes. */
export function msgAttrs(m: Msg, hdrLen: number): Attrs {
  return new Attrs(m.buf, m.dv, m.start + align4(hdrLen), m.end);
}

export { LE };
