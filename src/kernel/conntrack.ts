// Conntrack over ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK): delete the
// entries that involve given addresses, in the namespace the socket was opened in.
// Nothing answers "the entries of this address" without a walk: conntrack hashes whole
// tuples (ports included), and every dump, filtered (CTA_FILTER) or not, walks the whole
// hash table, shared by every namespace (262,144 buckets here: ~6 ms of kernel time), while
// CTA_FILTER can only AND its fields (four dumps for "source or destination, either
// direction"). So one dump covers both families and every address asked for, entries are
// matched on the receive buffer's bytes (a busy node tracks 10,000s of them, and building
// objects for each cost more than the walk), and each match is deleted by its original tuple
// (sent back as the kernel gave it), with its id, so an entry re-created meanwhile under the
// same tuple is left.
import { LE, NFGENMSG_LEN, NLM_F, NLA_F_NESTED, msgAttrs, type Msg } from "./codec.ts";
import { afOf, familyOfAf } from "./constants.ts";
import { isErrno } from "./errors.ts";
import { formatIP, type Family } from "../net/ip.ts";
import { withNetns } from "./netns.ts";
import { NETLINK_NETFILTER, NetlinkSocket } from "./socket.ts";

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG = { GET: 1, DELETE: 2 } as const;
const CTA = { TUPLE_ORIG: 1, TUPLE_REPLY: 2, ID: 12, ZONE: 18 } as const;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_PROTO = { NUM: 1, SRC_PORT: 2, DST_PORT: 3 } as const;
const CTA_IP = { V4_SRC: 1, V4_DST: 2, V6_SRC: 3, V6_DST: 4 } as const;
const AF_UNSPEC = 0;
const NLA_TYPE_MASK = 0x3fff;

const msgType = (t: number) => (NFNL_SUBSYS_CTNETLINK << 8) | t;

/** One conntrack entry, as much of it as deleting and reporting needs. */
export interface CtEntry {
  family: Family;
  protocol: number;
  /** Addresses of the original and reply directions. */
  orig: { src: string; dst: string; dport?: number };
  reply: { src: string; dst: string };
  /** The raw CTA_TUPLE_ORIG payload, sent back to delete the entry. */
  tuple: Uint8Array;
  id?: number;
  zone?: number;
}

/**
 * An entry seen during a dump, read in place from the receive buffer: valid only inside the
 * callback it is passed to (the next recv overwrites it). What a match needs, without
 * allocating per entry.
 */
export interface CtView {
  readonly family: Family;
  readonly protocol: number;
  readonly dport: number | undefined;
  /** The original direction's destination, formatted (allocates: after cheaper tests). */
  origDst(): string;
  /** Whether `addr` (4 or 16 bytes) is a source or destination of either direction. */
  involves(addr: Uint8Array): boolean;
  /**
   * Whether the destination was translated (DNAT): the reply comes from an address or port
   * other than the one the original direction was sent to.
   */
  dstTranslated(): boolean;
}

/** Offsets of one entry's fields in the receive buffer (-1: absent). */
class View implements CtView {
  buf!: Buffer;
  family: Family = 4;
  protocol = 0;
  dport: number | undefined;
  /** The reply direction's source port (where the original destination port was translated to). */
  replySport: number | undefined;
  /** orig src, orig dst, reply src, reply dst */
  readonly addr = [-1, -1, -1, -1];

  origDst(): string {
    const o = this.addr[1]!;
    return o < 0 ? "" : formatIP(this.buf.subarray(o, o + alen(this.family)), this.family);
  }

  involves(a: Uint8Array): boolean {
    if (a.length !== alen(this.family)) return false;
    for (const o of this.addr) {
      if (o < 0) continue;
      let i = 0;
      while (i < a.length && this.buf[o + i] === a[i]) i++;
      if (i === a.length) return true;
    }
    return false;
  }

  dstTranslated(): boolean {
    if (this.replySport !== this.dport) return true;
    const [o, r] = [this.addr[1]!, this.addr[2]!];
    if (o < 0 || r < 0) return o !== r;
    for (let i = 0; i < alen(this.family); i++) if (this.buf[o + i] !== this.buf[r + i]) return true;
    return false;
  }

  /** Reads the message's tuples; false when it is not a conntrack entry. */
  load(m: Msg): boolean {
    const family = familyOfAf(m.dv.getUint8(m.start));
    if (family === undefined) return false;
    this.buf = m.buf;
    this.family = family;
    this.protocol = 0;
    this.dport = undefined;
    this.replySport = undefined;
    this.addr.fill(-1);
    let seen = 0;
    eachAttr(m, m.start + NFGENMSG_LEN, m.end, (t, s, e) => {
      if (t !== CTA.TUPLE_ORIG && t !== CTA.TUPLE_REPLY) return;
      const dir = t === CTA.TUPLE_ORIG ? 0 : 2;
      seen++;
      eachAttr(m, s, e, (tt, ts, te) => {
        if (tt === CTA_TUPLE_IP) {
          eachAttr(m, ts, te, (it, is) => {
            if (it === CTA_IP.V4_SRC || it === CTA_IP.V6_SRC) this.addr[dir] = is;
            else if (it === CTA_IP.V4_DST || it === CTA_IP.V6_DST) this.addr[dir + 1] = is;
          });
        } else if (tt === CTA_TUPLE_PROTO && dir === 0) {
          eachAttr(m, ts, te, (pt, ps) => {
            if (pt === CTA_PROTO.NUM) this.protocol = m.dv.getUint8(ps);
            else if (pt === CTA_PROTO.DST_PORT) this.dport = m.dv.getUint16(ps, false);
          });
        } else if (tt === CTA_TUPLE_PROTO) {
          eachAttr(m, ts, te, (pt, ps) => {
            if (pt === CTA_PROTO.SRC_PORT) this.replySport = m.dv.getUint16(ps, false);
          });
        }
      });
    });
    return seen === 2;
  }
}

const alen = (f: Family) => (f === 4 ? 4 : 16);

/** Calls fn(type, payloadStart, payloadEnd) for each attribute between start and end. */
function eachAttr(m: Msg, start: number, end: number, fn: (type: number, s: number, e: number) => void): void {
  for (let p = start; p + 4 <= end; ) {
    const l = m.dv.getUint16(p, LE);
    if (l < 4 || p + l > end) return;
    fn(m.dv.getUint16(p + 2, LE) & NLA_TYPE_MASK, p + 4, p + l);
    p += (l + 3) & ~3;
  }
}

export class Conntrack {
  private constructor(private readonly sock: NetlinkSocket) {}

  static open(netnsPath?: string): Conntrack {
    const open = () => NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
    return new Conntrack(netnsPath === undefined ? open() : withNetns(netnsPath, open));
  }

  close(): void {
    this.sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Every entry of one family, or of both. */
  entries(family?: Family): CtEntry[] {
    return this.dump(family, () => true);
  }

  /** One dump; the entries `match` selects, copied out of the buffer. */
  private dump(family: Family | undefined, match: (v: CtView) => boolean): CtEntry[] {
    const view = new View();
    return this.sock.dump(
      `list conntrack entries (${family ? `IPv${family}` : "IPv4 and IPv6"})`,
      msgType(IPCTNL_MSG.GET),
      (w) => w.nfgenmsg({ family: family ? afOf(family) : AF_UNSPEC }),
      (m) => (view.load(m) && match(view) ? parseEntry(m, view.family) : undefined),
    );
  }

  /** Deletes the entries (of one family, or both) that `match` selects, with one dump; returns how many went. */
  deleteWhere(family: Family | undefined, match: (v: CtView) => boolean): number {
    let n = 0;
    for (const e of this.dump(family, match)) {
      const w = this.sock.begin(msgType(IPCTNL_MSG.DELETE), NLM_F.ACK).nfgenmsg({ family: afOf(e.family) });
      w.attrBytes(CTA.TUPLE_ORIG | NLA_F_NESTED, e.tuple);
      if (e.id !== undefined) w.attrBytes(CTA.ID, be32(e.id));
      if (e.zone !== undefined) w.attrBytes(CTA.ZONE, be16(e.zone));
      try {
        this.sock.exec(`delete conntrack entry ${e.orig.src} -> ${e.orig.dst} (protocol ${e.protocol})`);
        n++;
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err;
      }
    }
    return n;
  }
}

const be32 = (v: number) => Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
const be16 = (v: number) => Uint8Array.of(v >> 8, v & 0xff);

function parseEntry(m: Msg, family: Family): CtEntry | undefined {
  const a = msgAttrs(m, NFGENMSG_LEN);
  const orig = a.nested(CTA.TUPLE_ORIG);
  const reply = a.nested(CTA.TUPLE_REPLY);
  const tuple = a.bytes(CTA.TUPLE_ORIG);
  if (!orig || !reply || !tuple) return undefined;
  const addrs = (t: typeof orig) => {
    const ip = t.nested(CTA_TUPLE_IP);
    const [s, d] = family === 4 ? [CTA_IP.V4_SRC, CTA_IP.V4_DST] : [CTA_IP.V6_SRC, CTA_IP.V6_DST];
    const src = ip?.bytes(s);
    const dst = ip?.bytes(d);
    return { src: src ? formatIP(src, family) : "", dst: dst ? formatIP(dst, family) : "" };
  };
  const proto = orig.nested(CTA_TUPLE_PROTO);
  const e: CtEntry = { family, protocol: proto?.u8(CTA_PROTO.NUM) ?? 0, orig: { ...addrs(orig), dport: proto?.be16(CTA_PROTO.DST_PORT) }, reply: addrs(reply), tuple };
  const id = a.be32(CTA.ID);
  if (id !== undefined) e.id = id;
  const zone = a.be16(CTA.ZONE);
  if (zone !== undefined) e.zone = zone;
  return e;
}
