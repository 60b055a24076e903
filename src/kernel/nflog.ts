// NFLOG over nfnetlink (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_ULOG): bind to a log group
// and read the packets nft's `log group N` rules send there, with their prefix. Only what
// a verdict log needs is decoded: prefix, time, and the addresses, protocol and ports of the
// packet's first bytes (copy mode packet, 128 bytes).
// Wire format (linux/netfilter/nfnetlink_log.h): config messages carry NFULA_CFG_CMD
// {u8 command}, NFULA_CFG_MODE {be32 copy_range, u8 copy_mode, u8 pad} and NFULA_CFG_TIMEOUT
// {be32, 1/100 s}; the group is the
// nfgenmsg res_id (network order). Packets are NFULNL_MSG_PACKET with NFULA_* attributes.
import { NFGENMSG_LEN, NLM_F, msgAttrs, type Msg } from "./codec.ts";
import { withNetns } from "./netns.ts";
import { NETLINK_NETFILTER, NetlinkSocket } from "./socket.ts";
import { formatIP } from "../net/ip.ts";

const NFNL_SUBSYS_ULOG = 4;
const NFULNL_MSG_PACKET = 0;
const NFULNL_MSG_CONFIG = 1;
const NFULA_CFG = { CMD: 1, MODE: 2, TIMEOUT: 4 } as const;
/**
 * How long the kernel may hold logged packets before it sends them, in 1/100 s. Its default
 * is 100 (one second, or 100 packets, whichever comes first): a single denied SYN then reached
 * the verdict log a second after the packet. 10: a tenth of a second, still one message per
 * burst.
 */
const FLUSH_TIMEOUT = 10;
const NFULNL_CFG_CMD_BIND = 1;
const NFULNL_COPY_PACKET = 2;
const NFULA = { PACKET_HDR: 1, TIMESTAMP: 3, PAYLOAD: 9, PREFIX: 10 } as const;
const COPY_RANGE = 128;
const PROTOCOLS: Record<number, string> = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };

export interface LoggedPacket {
  prefix: string;
  /** Kernel timestamp when it has one, else the time it was read (ms since the epoch). */
  time: number;
  src: string;
  dst: string;
  protocol: string;
  srcPort?: number;
  dstPort?: number;
}

/** The L3/L4 fields of an IP packet's first bytes; undefined for anything else. */
function decodePacket(p: Uint8Array): Pick<LoggedPacket, "src" | "dst" | "protocol" | "srcPort" | "dstPort"> | undefined {
  if (p.length < 1) return undefined;
  const v = p[0]! >> 4;
  let proto: number;
  let l4: number;
  let src: string;
  let dst: string;
  if (v === 4 && p.length >= 20) {
    l4 = (p[0]! & 0xf) * 4;
    proto = p[9]!;
    src = formatIP(p.subarray(12, 16), 4);
    dst = formatIP(p.subarray(16, 20), 4);
  } else if (v === 6 && p.length >= 40) {
    l4 = 40; // extension headers are not followed: their ports stay unknown
    proto = p[6]!;
    src = formatIP(p.subarray(8, 24), 6);
    dst = formatIP(p.subarray(24, 40), 6);
  } else return undefined;
  const out = { src, dst, protocol: PROTOCOLS[proto] ?? String(proto) } as ReturnType<typeof decodePacket> & object;
  if ((proto === 6 || proto === 17 || proto === 132) && p.length >= l4 + 4) {
    out.srcPort = (p[l4]! << 8) | p[l4 + 1]!;
    out.dstPort = (p[l4 + 2]! << 8) | p[l4 + 3]!;
  }
  return out;
}

export class NflogReader {
  private constructor(private readonly sock: NetlinkSocket) {}

  /** Binds to `group` (in netnsPath when given) with packet copies; throws when the kernel refuses. */
  static open(group: number, netnsPath?: string): NflogReader {
    const open = () => NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
    const sock = netnsPath ? withNetns(netnsPath, open) : open();
    try {
      const type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
      sock.begin(type, NLM_F.ACK).nfgenmsg({ family: 0, resId: group }).attrU8(NFULA_CFG.CMD, NFULNL_CFG_CMD_BIND);
      sock.exec(`bind NFLOG group ${group}`, undefined, { dump: false });
      const mode = new Uint8Array(6);
      new DataView(mode.buffer).setUint32(0, COPY_RANGE, false);
      mode[4] = NFULNL_COPY_PACKET;
      sock.begin(type, NLM_F.ACK).nfgenmsg({ family: 0, resId: group }).attrBytes(NFULA_CFG.MODE, mode);
      sock.exec(`set NFLOG group ${group} copy mode`, undefined, { dump: false });
      const timeout = new Uint8Array(4);
      new DataView(timeout.buffer).setUint32(0, FLUSH_TIMEOUT, false);
      sock.begin(type, NLM_F.ACK).nfgenmsg({ family: 0, resId: group }).attrBytes(NFULA_CFG.TIMEOUT, timeout);
      sock.exec(`set NFLOG group ${group} flush timeout`, undefined, { dump: false });
    } catch (e) {
      sock.close();
      throw e;
    }
    return new NflogReader(sock);
  }

  /** The packets logged since the last call (never waits). */
  read(): LoggedPacket[] {
    const out: LoggedPacket[] = [];
    this.sock.drain((m: Msg) => {
      if (m.type !== ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return;
      const a = msgAttrs(m, NFGENMSG_LEN);
      const payload = a.bytes(NFULA.PAYLOAD);
      const pkt = payload && decodePacket(payload);
      if (!pkt) return;
      const sec = a.be64(NFULA.TIMESTAMP);
      // struct nfulnl_msg_packet_timestamp {be64 sec; be64 usec}
      const ts = a.bytes(NFULA.TIMESTAMP);
      const time = sec !== undefined && ts && ts.length >= 16
        ? Number(sec) * 1000 + Math.floor(Number(new DataView(ts.buffer, ts.byteOffset + 8, 8).getBigUint64(0, false)) / 1000)
        : Date.now();
      out.push({ prefix: (a.str(NFULA.PREFIX) ?? "").replace(/\0+$/, ""), time, ...pkt });
    });
    return out;
  }

  close(): void {
    this.sock.close();
  }
}
