// nftables trace events (`nft monitor trace`) read over NETLINK_NETFILTER: a packet with
// nftrace set (`meta nftrace set 1`) makes the kernel report every rule and chain policy it
// meets, as NFT_MSG_TRACE messages to the NFNLGRP_NFTRACE group of its namespace. The
// kernel's own account of what happened to a packet, for `mncni explain --probe`.
import { NFGENMSG_LEN, msgAttrs, u8At, type Msg } from "./codec.ts";
import { NFPROTO, type NftFamily } from "./nftables.ts";
import { withNetns } from "./netns.ts";
import { NETLINK_NETFILTER, NetlinkSocket } from "./socket.ts";

const NFNLGRP_NFTRACE = 9;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_TRACE = 17;
/** linux/netfilter/nf_tables.h enum nft_trace_attributes. */
const NFTA_TRACE = { TABLE: 1, CHAIN: 2, RULE_HANDLE: 3, TYPE: 4, VERDICT: 5, ID: 6, NETWORK_HEADER: 8, IIF: 10, OIF: 12, MARK: 14, NFPROTO: 15, POLICY: 16 } as const;
const NFTA_VERDICT = { CODE: 1, CHAIN: 2 } as const;
const TRACE_TYPES = ["unspec", "policy", "return", "rule"] as const;
/** NF_DROP... and nftables' own negative codes (NFT_CONTINUE...). */
const VERDICTS: Record<number, string> = { 0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", [-1]: "continue", [-2]: "break", [-3]: "jump", [-4]: "goto", [-5]: "return" };

export interface TraceEvent {
  /** The table's family, as nft names it. */
  family: NftFamily | string;
  table: string;
  chain: string;
  /** "rule": a rule matched (handle set); "policy": the chain's policy applied; "return": the chain ended. */
  type: (typeof TRACE_TYPES)[number];
  handle?: bigint;
  verdict?: string;
  /** The chain jumped to or gone to. */
  target?: string;
  /** One id per packet and namespace: events of one packet share it. */
  id: number;
  iif?: number;
  oif?: number;
  mark?: number;
  /** The packet's IPv4/IPv6 header as the kernel saw it at this point (addresses after NAT so far). */
  network?: Uint8Array;
}

const familyName = (v: number): string => (Object.entries(NFPROTO).find(([, n]) => n === v)?.[0] ?? String(v));

function parseTrace(m: Msg): TraceEvent | undefined {
  if (m.type !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE)) return undefined;
  const a = msgAttrs(m, NFGENMSG_LEN);
  const code = a.nested(NFTA_TRACE.VERDICT)?.be32(NFTA_VERDICT.CODE);
  const ev: TraceEvent = {
    family: familyName(u8At(m, 0)),
    table: a.str(NFTA_TRACE.TABLE) ?? "",
    chain: a.str(NFTA_TRACE.CHAIN) ?? "",
    type: TRACE_TYPES[a.be32(NFTA_TRACE.TYPE) ?? 0] ?? "unspec",
    id: a.be32(NFTA_TRACE.ID) ?? 0,
  };
  const handle = a.be64(NFTA_TRACE.RULE_HANDLE);
  if (handle !== undefined) ev.handle = handle;
  if (code !== undefined) ev.verdict = VERDICTS[code | 0] ?? String(code | 0);
  const target = a.nested(NFTA_TRACE.VERDICT)?.str(NFTA_VERDICT.CHAIN);
  if (target) ev.target = target;
  const iif = a.be32(NFTA_TRACE.IIF);
  if (iif !== undefined) ev.iif = iif;
  const oif = a.be32(NFTA_TRACE.OIF);
  if (oif !== undefined) ev.oif = oif;
  const mark = a.be32(NFTA_TRACE.MARK);
  if (mark !== undefined) ev.mark = mark;
  const nh = a.bytes(NFTA_TRACE.NETWORK_HEADER);
  if (nh) ev.network = nh;
  return ev;
}

/** Listens to one namespace's trace events from the moment it is opened. */
export class TraceListener {
  private constructor(private readonly sock: NetlinkSocket) {}

  static open(netnsPath?: string): TraceListener {
    const open = () => {
      const s = NetlinkSocket.open({ protocol: NETLINK_NETFILTER });
      try {
        s.joinGroup(NFNLGRP_NFTRACE);
      } catch (e) {
        s.close();
        throw e;
      }
      return s;
    };
    return new TraceListener(netnsPath === undefined ? open() : withNetns(netnsPath, open));
  }

  /** The events received until none arrives for quietMs. */
  read(quietMs: number): TraceEvent[] {
    const out: TraceEvent[] = [];
    this.sock.receiveEvents(quietMs, (m) => {
      const ev = parseTrace(m);
      if (ev) out.push(ev);
    });
    return out;
  }

  close(): void {
    this.sock.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
