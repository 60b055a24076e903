// Traffic control over rtnetlink (RTM_NEWQDISC / RTM_NEWTFILTER), the few shapes mncni
// uses: a tbf root qdisc (rate, burst, queue limit), the ingress qdisc, and a match-all
// u32 filter whose one action redirects every packet to another device (mirred egress
// redirect, how ingress traffic is shaped: on an ifb device's egress).
//
// tcmsg: {u8 family, u8 pad, u16 pad, i32 ifindex, u32 handle, u32 parent, u32 info};
// a filter's info is (priority << 16) | protocol, the protocol in network order.
import { LE, NLA_F_NESTED, NLM_F, u32At, i32At, msgAttrs, type Writer } from "./codec.ts";
import type { NetlinkSocket } from "./socket.ts";

const RTM_TC = { NEWQDISC: 36, DELQDISC: 37, GETQDISC: 38, NEWTFILTER: 44, DELTFILTER: 45, GETTFILTER: 46 } as const;
const TCMSG_LEN = 20;
const TCA = { KIND: 1, OPTIONS: 2 } as const;
export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;
/** clsact shares the ingress qdisc's parent; its two hooks are minor ffff2 (ingress) and fff3 (egress). */
export const TC_H_CLSACT = TC_H_INGRESS;
export const CLSACT_INGRESS = 0xfffffff2;
const TCA_BPF = { FD: 6, NAME: 7, FLAGS: 8, TAG: 10, ID: 11 } as const;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** The ingress qdisc's handle, ffff:. */
const INGRESS_HANDLE = 0xffff0000;
const TCA_TBF = { PARMS: 1, RATE64: 4, BURST: 6 } as const;
const TC_LINKLAYER_ETHERNET = 1;
const TCA_U32 = { SEL: 5, ACT: 7 } as const;
const TC_U32_TERMINAL = 1;
const TCA_ACT = { KIND: 1, OPTIONS: 2 } as const;
const TCA_MIRRED_PARMS = 2;
const TC_ACT_STOLEN = 4;
const TCA_EGRESS_REDIR = 1;
const ETH_P_ALL = 0x0003;
const CREATE = NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL;

function tcmsg(w: Writer, o: { index: number; handle?: number; parent?: number; info?: number }): void {
  w.u8(0).u8(0).u16(0).i32(o.index).u32(o.handle ?? 0).u32(o.parent ?? 0).u32(o.info ?? 0);
}

export interface TbfOpts {
  index: number;
  /** Bytes per second. */
  rate: number;
  /** Bucket size in bytes: how much may pass at line rate after an idle time. */
  burst: number;
  /** Bytes queued before packets are dropped. */
  limit: number;
}

/** A tbf root qdisc (replacing any root qdisc the device has). */
export function addTbf(sock: NetlinkSocket, o: TbfOpts): void {
  const w = sock.begin(RTM_TC.NEWQDISC, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE);
  tcmsg(w, { index: o.index, handle: 0x00010000, parent: TC_H_ROOT });
  w.attrStr(TCA.KIND, "tbf");
  const opts = w.nestStart(TCA.OPTIONS | NLA_F_NESTED);
  const rate32 = Math.min(o.rate, 0xffffffff);
  // tc_tbf_qopt: rate and peakrate tc_ratespecs, limit, buffer, mtu. With a link layer
  // set the kernel needs no rate table; TCA_TBF_BURST gives the bucket in bytes.
  const parms = Buffer.alloc(36);
  parms.writeUInt8(TC_LINKLAYER_ETHERNET, 1);
  parms.writeUInt32LE(rate32, 8);
  parms.writeUInt8(TC_LINKLAYER_ETHERNET, 13);
  parms.writeUInt32LE(o.limit, 24);
  if (!LE) throw new RangeError("tc messages are only built on little-endian hosts");
  w.attrBytes(TCA_TBF.PARMS, parms);
  if (o.rate > 0xffffffff) {
    const r64 = Buffer.alloc(8);
    r64.writeBigUInt64LE(BigInt(o.rate));
    w.attrBytes(TCA_TBF.RATE64, r64);
  }
  w.attrU32(TCA_TBF.BURST, o.burst);
  w.nestEnd(opts);
  sock.exec(`add tbf qdisc to link ${o.index}`);
}

/** The ingress qdisc (ffff:), where filters see what a device receives. */
export function addIngressQdisc(sock: NetlinkSocket, index: number): void {
  const w = sock.begin(RTM_TC.NEWQDISC, CREATE);
  tcmsg(w, { index, handle: INGRESS_HANDLE, parent: TC_H_INGRESS });
  w.attrStr(TCA.KIND, "ingress");
  sock.exec(`add ingress qdisc to link ${index}`);
}

/**
 * A u32 filter matching every packet (one key: mask 0 at offset 0) on the ingress qdisc,
 * redirecting it to the egress of `to`. u32, not matchall: kernels without cls_matchall
 * are common, and u32 is what the reference bandwidth plugin relies on.
 */
export function addRedirect(sock: NetlinkSocket, o: { index: number; to: number; priority?: number }): void {
  const w = sock.begin(RTM_TC.NEWTFILTER, CREATE);
  const proto = ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8); // htons on little-endian
  tcmsg(w, { index: o.index, parent: INGRESS_HANDLE, info: ((o.priority ?? 1) << 16) | proto });
  w.attrStr(TCA.KIND, "u32");
  const opts = w.nestStart(TCA.OPTIONS | NLA_F_NESTED);
  // tc_u32_sel {flags, offshift, nkeys, pad, offmask, off, offoff, hoff, hmask} and one
  // tc_u32_key {mask, val, off, offmask}, all zero: matches anything.
  const sel = Buffer.alloc(16 + 16);
  sel.writeUInt8(TC_U32_TERMINAL, 0);
  sel.writeUInt8(1, 2);
  w.attrBytes(TCA_U32.SEL, sel);
  const acts = w.nestStart(TCA_U32.ACT | NLA_F_NESTED);
  const act = w.nestStart(1 | NLA_F_NESTED);
  w.attrStr(TCA_ACT.KIND, "mirred");
  const aopts = w.nestStart(TCA_ACT.OPTIONS | NLA_F_NESTED);
  // tc_mirred: tc_gen {index, capab, action, refcnt, bindcnt}, eaction, ifindex.
  const parms = Buffer.alloc(28);
  parms.writeInt32LE(TC_ACT_STOLEN, 8);
  parms.writeInt32LE(TCA_EGRESS_REDIR, 20);
  parms.writeUInt32LE(o.to, 24);
  w.attrBytes(TCA_MIRRED_PARMS, parms);
  w.nestEnd(aopts);
  w.nestEnd(act);
  w.nestEnd(acts);
  w.nestEnd(opts);
  sock.exec(`add redirect filter from link ${o.index} to link ${o.to}`);
}

export interface QdiscInfo {
  index: number;
  kind: string;
  handle: number;
  parent: number;
}

/** The qdiscs of one device (all devices when index is 0). */
export function qdiscs(sock: NetlinkSocket, index = 0): QdiscInfo[] {
  return sock.dump("list qdiscs", RTM_TC.GETQDISC, (w) => tcmsg(w, { index }), (m) => {
    const q = { index: i32At(m, 4), handle: u32At(m, 8), parent: u32At(m, 12), kind: msgAttrs(m, TCMSG_LEN).str(TCA.KIND) ?? "" };
    return index === 0 || q.index === index ? q : undefined;
  });
}

/** The clsact qdisc (ffff:), whose ingress and egress hooks hold bpf filters. */
export function addClsact(sock: NetlinkSocket, index: number): void {
  const w = sock.begin(RTM_TC.NEWQDISC, CREATE);
  tcmsg(w, { index, handle: INGRESS_HANDLE, parent: TC_H_CLSACT });
  w.attrStr(TCA.KIND, "clsact");
  sock.exec(`add clsact qdisc to link ${index}`);
}

export interface BpfFilterOpts {
  index: number;
  /** the loaded SCHED_CLS program's fd */
  progFd: number;
  /** shown by `tc filter show` and how mncni finds its filter again */
  name: string;
  priority?: number;
}

/**
 * A direct-action cls_bpf filter on the clsact ingress hook (the program's return value is
 * the verdict), replacing one with the same priority and handle. It holds the program: the
 * program lives while the filter does.
 */
export function addBpfFilter(sock: NetlinkSocket, o: BpfFilterOpts): void {
  const w = sock.begin(RTM_TC.NEWTFILTER, NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE);
  tcmsg(w, { index: o.index, parent: CLSACT_INGRESS, handle: 1, info: ((o.priority ?? 1) << 16) | htons(ETH_P_ALL) });
  w.attrStr(TCA.KIND, "bpf");
  const opts = w.nestStart(TCA.OPTIONS | NLA_F_NESTED);
  w.attrU32(TCA_BPF.FD, o.progFd);
  w.attrStr(TCA_BPF.NAME, o.name);
  w.attrU32(TCA_BPF.FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
  w.nestEnd(opts);
  sock.exec(`add bpf filter ${o.name} to link ${o.index}`);
}

export interface BpfFilterInfo {
  index: number;
  priority: number;
  handle: number;
  name: string;
  /** the attached program's ID */
  progId: number;
  tag: string;
  /** the program's return value is the verdict (TCA_BPF_FLAG_ACT_DIRECT) */
  directAction: boolean;
}

/** The bpf filters on a device's clsact ingress hook (none when it has no clsact). */
export function bpfFilters(sock: NetlinkSocket, index: number): BpfFilterInfo[] {
  if (!qdiscs(sock, index).some((q) => q.kind === "clsact")) return [];
  return sock.dump("list ingress filters", RTM_TC.GETTFILTER, (w) => tcmsg(w, { index, parent: CLSACT_INGRESS }), (m) => {
    const a = msgAttrs(m, TCMSG_LEN);
    const opts = a.str(TCA.KIND) === "bpf" ? a.nested(TCA.OPTIONS) : undefined;
    // The dump also lists the filter chain's head (no options): only real filters count.
    if (!opts?.has(TCA_BPF.ID)) return undefined;
    return {
      index: i32At(m, 4), handle: u32At(m, 8), priority: u32At(m, 16) >>> 16, name: opts.str(TCA_BPF.NAME) ?? "",
      progId: opts.u32(TCA_BPF.ID) ?? 0, tag: Buffer.from(opts.bytes(TCA_BPF.TAG) ?? []).toString("hex"),
      directAction: ((opts.u32(TCA_BPF.FLAGS) ?? 0) & TCA_BPF_FLAG_ACT_DIRECT) !== 0,
    };
  });
}

/** Deletes one ingress filter by priority (and with it the program's hold). */
export function delIngressFilter(sock: NetlinkSocket, index: number, priority: number): void {
  const w = sock.begin(RTM_TC.DELTFILTER, NLM_F.ACK);
  tcmsg(w, { index, parent: CLSACT_INGRESS, info: (priority << 16) | htons(ETH_P_ALL) });
  sock.exec(`delete ingress filter ${priority} of link ${index}`);
}

function htons(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}

/** Deletes the root (or, with parent TC_H_INGRESS, the ingress) qdisc of a device. */
export function delQdisc(sock: NetlinkSocket, index: number, parent: number = TC_H_ROOT): void {
  const w = sock.begin(RTM_TC.DELQDISC, NLM_F.ACK);
  tcmsg(w, { index, parent, handle: parent === TC_H_INGRESS ? INGRESS_HANDLE : 0 });
  sock.exec(`delete qdisc of link ${index}`);
}
