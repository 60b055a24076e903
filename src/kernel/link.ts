// Links (RTM_*LINK): list, look up, create veth/netkit/bridge/vxlan, change, delete, bridge ports.
import {
  IFF, IFLA, IFLA_BRPORT, IFLA_INFO, IFLA_NETKIT, IFLA_VXLAN, IFINFOMSG_LEN, NLA_F_NESTED, NLM_F, RTEXT_FILTER_SKIP_STATS,
  RTM, VETH_INFO_PEER, i32At, msgAttrs, u32At, type Attrs, type Msg, type Writer,
} from "./codec.ts";
import { isErrno } from "./errors.ts";
import { AF_BRIDGE } from "./constants.ts";
import { formatIP, formatMAC, parseIP, parseMAC } from "../net/ip.ts";
import type { NetlinkSocket } from "./socket.ts";

export interface VxlanInfo {
  vni: number;
  local?: string;
  port?: number;
  learning?: boolean;
  device?: number;
}

export interface Link {
  index: number;
  name: string;
  /** IFLA_INFO_KIND: "veth", "bridge", "vxlan", ...; absent for plain devices like lo. */
  kind?: string;
  mtu: number;
  /** "aa:bb:cc:dd:ee:ff", lowercase */
  mac: string;
  /** IFF_UP */
  up: boolean;
  flags: number;
  master?: number;
  promisc: boolean;
  /** IFLA_IFALIAS, a free-form label (`ip link set X alias ...`). */
  alias?: string;
  /** Namespace id (in this namespace) of the peer/lower device's namespace. */
  linkNetnsId?: number;
  /** IFLA_LINK: for a veth, the peer's index (in linkNetnsId's namespace when set). */
  peerIndex?: number;
  vxlan?: VxlanInfo;
  /** netkit only: its mode, and whether this is the primary (host) end. */
  netkitMode?: "l2" | "l3";
  netkitPrimary?: boolean;
}

/** Attributes every new link may carry. */
interface CommonLinkOpts {
  name: string;
  mtu?: number;
  mac?: string;
  txqlen?: number;
}

export interface VethOpts extends CommonLinkOpts {
  peerName: string;
  /** Create the peer directly in this namespace (an fd from openNetnsFd). */
  peerNetnsFd?: number;
  peerMac?: string;
}

/**
 * netkit: a veth replacement for container data paths (Linux 6.7+). The primary end stays in
 * the requesting namespace; a packet sent by the peer (the pod end) is handed to the primary's
 * stack without a backlog queue. L3 mode has no MAC and no ARP (routed pods); L2 mode is
 * Ethernet. Both ends forward by default (policy "pass").
 */
export interface NetkitOpts extends VethOpts {
  mode: "l2" | "l3";
}

export interface BridgeOpts {
  name: string;
  mtu?: number;
  mac?: string;
}

export interface VxlanOpts {
  name: string;
  vni: number;
  local?: string;
  /** UDP destination port; the kernel default is 8472 (Linux) unless set. */
  port?: number;
  /** Index of the underlay device. */
  device?: number;
  learning?: boolean;
  mtu?: number;
  mac?: string;
}

export interface SetLinkOpts {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Index of the bridge to enslave to; 0 removes the master. */
  master?: number;
  name?: string;
  /** Move the link into the namespace of this fd. */
  netnsFd?: number;
  promisc?: boolean;
  /** IFLA_IFALIAS; "" removes it. */
  alias?: string;
}

export interface BridgePortOpts {
  hairpin?: boolean;
  learning?: boolean;
}

const CREATE = NLM_F.CREATE | NLM_F.EXCL | NLM_F.ACK;

function writeCommon(w: Writer, o: { name?: string; mtu?: number; mac?: string; txqlen?: number; netnsFd?: number }): void {
  if (o.name !== undefined) w.attrStr(IFLA.IFNAME, o.name);
  if (o.mtu !== undefined) w.attrU32(IFLA.MTU, o.mtu);
  if (o.mac !== undefined) w.attrBytes(IFLA.ADDRESS, parseMAC(o.mac));
  if (o.txqlen !== undefined) w.attrU32(IFLA.TXQLEN, o.txqlen);
  if (o.netnsFd !== undefined) w.attrU32(IFLA.NET_NS_FD, o.netnsFd);
}

/** RTM_NEWLINK for a new device of kind; data writes IFLA_INFO_DATA's content. */
function newLink(sock: NetlinkSocket, kind: string, o: CommonLinkOpts, data?: (w: Writer) => void): void {
  const w = sock.begin(RTM.NEWLINK, CREATE).ifinfomsg({});
  writeCommon(w, o);
  const info = w.nestStart(IFLA.LINKINFO);
  w.attrStr(IFLA_INFO.KIND, kind);
  if (data) {
    const d = w.nestStart(IFLA_INFO.DATA);
    data(w);
    w.nestEnd(d);
  }
  w.nestEnd(info);
  sock.exec(`add ${kind} "${o.name}"`);
}

export function addVeth(sock: NetlinkSocket, o: VethOpts): void {
  newLink(sock, "veth", o, (w) => {
    const peer = w.nestStart(VETH_INFO_PEER);
    w.ifinfomsg({});
    // The peer gets the same MTU and queue length: a mismatched pair drops large frames.
    writeCommon(w, { name: o.peerName, mtu: o.mtu, mac: o.peerMac, txqlen: o.txqlen, netnsFd: o.peerNetnsFd });
    w.nestEnd(peer);
  });
}

const NETKIT_MODE = { l2: 0, l3: 1 } as const;
const NETKIT_PASS = 0;

export function addNetkit(sock: NetlinkSocket, o: NetkitOpts): void {
  // An L3 device has no hardware address: the kernel refuses IFLA_ADDRESS for it.
  const mac = o.mode === "l2" ? o.mac : undefined;
  const peerMac = o.mode === "l2" ? o.peerMac : undefined;
  newLink(sock, "netkit", { ...o, mac }, (w) => {
    w.attrU32(IFLA_NETKIT.MODE, NETKIT_MODE[o.mode]);
    w.attrU32(IFLA_NETKIT.POLICY, NETKIT_PASS);
    w.attrU32(IFLA_NETKIT.PEER_POLICY, NETKIT_PASS);
    const peer = w.nestStart(IFLA_NETKIT.PEER_INFO);
    w.ifinfomsg({});
    writeCommon(w, { name: o.peerName, mtu: o.mtu, mac: peerMac, txqlen: o.txqlen, netnsFd: o.peerNetnsFd });
    w.nestEnd(peer);
  });
}

export function addBridge(sock: NetlinkSocket, o: BridgeOpts): void {
  newLink(sock, "bridge", o);
}

/** An ifb device: what it is sent it passes back into the stack, after its qdisc (shaping of what another device receives). */
export function addIfb(sock: NetlinkSocket, o: BridgeOpts): void {
  newLink(sock, "ifb", o);
}

export function addVxlan(sock: NetlinkSocket, o: VxlanOpts): void {
  newLink(sock, "vxlan", o, (w) => {
    w.attrU32(IFLA_VXLAN.ID, o.vni);
    if (o.local !== undefined) {
      const ip = parseIP(o.local);
      w.attrBytes(ip.family === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, ip.bytes);
    }
    if (o.device !== undefined) w.attrU32(IFLA_VXLAN.LINK, o.device);
    if (o.port !== undefined) w.attrBe16(IFLA_VXLAN.PORT, o.port);
    if (o.learning !== undefined) w.attrU8(IFLA_VXLAN.LEARNING, o.learning ? 1 : 0);
  });
}

function writeTarget(w: Writer, nameOrIndex: string | number, family = 0): void {
  if (typeof nameOrIndex === "number") {
    w.ifinfomsg({ family, index: nameOrIndex });
  } else {
    w.ifinfomsg({ family }).attrStr(IFLA.IFNAME, nameOrIndex);
  }
}

export function setLink(sock: NetlinkSocket, index: number, o: SetLinkOpts): void {
  let flags = 0;
  let change = 0;
  if (o.up !== undefined) {
    change |= IFF.UP;
    if (o.up) flags |= IFF.UP;
  }
  if (o.promisc !== undefined) {
    change |= IFF.PROMISC;
    if (o.promisc) flags |= IFF.PROMISC;
  }
  // The kernel applies netns, address, mtu, name and master before the flags, so "up" comes last.
  const w = sock.begin(RTM.SETLINK, NLM_F.ACK).ifinfomsg({ index, flags, change });
  writeCommon(w, o);
  if (o.master !== undefined) w.attrU32(IFLA.MASTER, o.master);
  // Sent without a NUL, as iproute2 does: an empty attribute removes the alias.
  if (o.alias !== undefined) w.attrBytes(IFLA.IFALIAS, Buffer.from(o.alias));
  sock.exec(`set link "${index}"`);
}

export function delLink(sock: NetlinkSocket, nameOrIndex: string | number): void {
  writeTarget(sock.begin(RTM.DELLINK, NLM_F.ACK), nameOrIndex);
  sock.exec(`delete link "${nameOrIndex}"`);
}

/** Bridge port options through IFLA_PROTINFO, as `bridge link set` does. */
export function setBridgePort(sock: NetlinkSocket, index: number, o: BridgePortOpts): void {
  const w = sock.begin(RTM.SETLINK, NLM_F.ACK).ifinfomsg({ family: AF_BRIDGE, index });
  // The bridge reads IFLA_PROTINFO without NLA_F_NESTED as a bare STP state (old RSTP ABI).
  const p = w.nestStart(IFLA.PROTINFO | NLA_F_NESTED);
  if (o.hairpin !== undefined) w.attrU8(IFLA_BRPORT.MODE, o.hairpin ? 1 : 0);
  if (o.learning !== undefined) w.attrU8(IFLA_BRPORT.LEARNING, o.learning ? 1 : 0);
  w.nestEnd(p);
  sock.exec(`set bridge port "${index}"`);
}

function parseVxlan(d: Attrs): VxlanInfo {
  const v: VxlanInfo = { vni: d.u32(IFLA_VXLAN.ID) ?? 0 };
  const local = d.bytes(IFLA_VXLAN.LOCAL) ?? d.bytes(IFLA_VXLAN.LOCAL6);
  if (local) v.local = formatIP(local);
  const port = d.be16(IFLA_VXLAN.PORT);
  if (port !== undefined) v.port = port;
  const learning = d.u8(IFLA_VXLAN.LEARNING);
  if (learning !== undefined) v.learning = learning !== 0;
  const dev = d.u32(IFLA_VXLAN.LINK);
  if (dev) v.device = dev;
  return v;
}

function parseLink(m: Msg): Link | undefined {
  if (m.type !== RTM.NEWLINK) return undefined;
  const flags = u32At(m, 8);
  const a = msgAttrs(m, IFINFOMSG_LEN);
  const mac = a.bytes(IFLA.ADDRESS);
  const link: Link = {
    index: i32At(m, 4),
    name: a.str(IFLA.IFNAME) ?? "",
    mtu: a.u32(IFLA.MTU) ?? 0,
    mac: mac ? formatMAC(mac) : "",
    up: (flags & IFF.UP) !== 0,
    flags,
    promisc: (flags & IFF.PROMISC) !== 0,
  };
  const master = a.u32(IFLA.MASTER);
  if (master) link.master = master;
  const peer = a.u32(IFLA.LINK);
  if (peer !== undefined) link.peerIndex = peer;
  const alias = a.str(IFLA.IFALIAS);
  if (alias) link.alias = alias;
  const nsid = a.i32(IFLA.LINK_NETNSID);
  if (nsid !== undefined) link.linkNetnsId = nsid;
  const info = a.nested(IFLA.LINKINFO);
  if (info) {
    const kind = info.str(IFLA_INFO.KIND);
    if (kind) link.kind = kind;
    const data = info.nested(IFLA_INFO.DATA);
    if (kind === "vxlan" && data) link.vxlan = parseVxlan(data);
    if (kind === "netkit" && data) {
      const mode = data.u32(IFLA_NETKIT.MODE);
      if (mode !== undefined) link.netkitMode = mode === NETKIT_MODE.l3 ? "l3" : "l2";
      const primary = data.u8(IFLA_NETKIT.PRIMARY);
      if (primary !== undefined) link.netkitPrimary = primary !== 0;
    }
  }
  return link;
}

function skipStats(w: Writer): void {
  // Per-link counters are most of a link message and we never read them.
  w.attrU32(IFLA.EXT_MASK, RTEXT_FILTER_SKIP_STATS);
}

export function links(sock: NetlinkSocket): Link[] {
  return sock.dump("list links", RTM.GETLINK, (w) => skipStats(w.ifinfomsg({})), parseLink);
}

export function link(sock: NetlinkSocket, nameOrIndex: string | number): Link | undefined {
  const w = sock.begin(RTM.GETLINK, 0);
  writeTarget(w, nameOrIndex);
  skipStats(w);
  let found: Link | undefined;
  try {
    sock.exec(`get link "${nameOrIndex}"`, (m) => {
      found = parseLink(m) ?? found;
    });
  } catch (e) {
    if (isErrno(e, "ENODEV")) return undefined;
    throw e;
  }
  return found;
}
