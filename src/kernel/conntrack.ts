// Conntrack over ctnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_CTNETLINK): delete the
// entries that involve given addresses, in the namespace the socket was opened in.
// The kernel's flush-with-filter only knows marks and zones, so the table is dumped per
// family and each matching entry deleted by its original tuple (sent back as the kernel
// gave it), with its id, so an entry re-created meanwhile under the same tuple is left.
import { NFGENMSG_LEN, NLM_F, NLA_F_NESTED, msgAttrs, type Msg } from "./codec.ts";
import { afOf } from "./constants.ts";
import { isErrno } from "./errors.ts";
import { familyOf, formatIP, parseIP, type Family } from "../net/ip.ts";
import { withNetns } from "./netns.ts";
import { NETLINK_NETFILTER, NetlinkSocket } from "./socket.ts";

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG = { GET: 1, DELETE: 2 } as const;
const CTA = { TUPLE_ORIG: 1, TUPLE_REPLY: 2, ID: 12, ZONE: 18 } as const;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_PROTO = { NUM: 1, SRC_PORT: 2, DST_PORT: 3 } as const;
const CTA_IP = { V4_SRC: 1, V4_DST: 2, V6_SRC: 3, V6_DST: 4 } as const;

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

  /** Every entry of one family. */
  entries(family: Family): CtEntry[] {
    return this.sock.dump(`list conntrack entries (IPv${family})`, msgType(IPCTNL_MSG.GET), (w) => w.nfgenmsg({ family: afOf(family) }), (m) => parseEntry(m, family));
  }

  /**
   * Deletes every entry whose original or reply direction has one of `addrs` as source or
   * destination; returns how many went. Entries gone meanwhile are not an error.
   */
  deleteByAddress(addrs: string[]): number {
    let n = 0;
    for (const family of [4, 6] as Family[]) {
      const mine = new Set(addrs.filter((a) => familyOf(a) === family).map((a) => formatIP(parseAny(a), family)));
      if (mine.size === 0) continue;
      n += this.deleteWhere(family, (e) => [e.orig.src, e.orig.dst, e.reply.src, e.reply.dst].some((a) => mine.has(a)));
    }
    return n;
  }

  /** Deletes the entries of one family that `match` selects; returns how many went. */
  deleteWhere(family: Family, match: (e: CtEntry) => boolean): number {
    let n = 0;
    for (const e of this.entries(family).filter(match)) {
      const w = this.sock.begin(msgType(IPCTNL_MSG.DELETE), NLM_F.ACK).nfgenmsg({ family: afOf(family) });
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

const parseAny = (a: string) => parseIP(a).bytes;
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
