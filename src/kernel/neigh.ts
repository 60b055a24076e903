// Neighbours (ARP/NDP, RTM_*NEIGH) and bridge/VXLAN forwarding entries (AF_BRIDGE FDB).
import { NDA, NDMSG_LEN, NLM_F, NTF, NUD, RTM, i32At, msgAttrs, u8At, u16At, type Msg } from "./codec.ts";
import { AF_BRIDGE, afOf, familyOfAf } from "./constants.ts";
import { formatIP, formatMAC, parseIP, parseMAC, type Family } from "../net/ip.ts";
import type { NetlinkSocket } from "./socket.ts";

export type NeighFamily = Family | "bridge";

export interface NeighSpec {
  index: number;
  /** The neighbour's IP (ARP/NDP entries). */
  ip?: string;
  mac?: string;
  /** Default: from ip; "bridge" (an FDB entry) when there is no ip. */
  family?: NeighFamily;
  /** Default: "permanent". */
  state?: "permanent" | "reachable" | "noarp" | number;
  /** VXLAN FDB: the remote VTEP's IP (NDA_DST). */
  dst?: string;
  /** NTF_SELF: the entry belongs to the device itself (VXLAN); default for FDB entries without master. */
  self?: boolean;
  /** NTF_MASTER: the entry belongs to the bridge the port is enslaved to. */
  master?: boolean;
}

export interface AddNeighOpts {
  replace?: boolean;
  /** NLM_F_APPEND: add another destination for the same MAC (VXLAN all-zero flood entries). */
  append?: boolean;
}

export interface NeighInfo {
  index: number;
  family: NeighFamily;
  ip?: string;
  mac?: string;
  state: number;
  flags: number;
  /** FDB only: NDA_DST, the remote VTEP. */
  dst?: string;
}

const STATES = { permanent: NUD.PERMANENT, reachable: NUD.REACHABLE, noarp: NUD.NOARP } as const;

function familyOf(n: NeighSpec): NeighFamily {
  if (n.family !== undefined) return n.family;
  return n.ip !== undefined ? parseIP(n.ip).family : "bridge";
}

const afOfNeigh = (f: NeighFamily): number => (f === "bridge" ? AF_BRIDGE : afOf(f));

function describe(n: NeighSpec): string {
  return `neighbour "${n.ip ?? n.mac ?? ""}"${n.dst ? ` dst ${n.dst}` : ""} on link "${n.index}"`;
}

function writeNeigh(sock: NetlinkSocket, type: number, nlFlags: number, n: NeighSpec): void {
  const family = familyOf(n);
  let ntf = (n.self ? NTF.SELF : 0) | (n.master ? NTF.MASTER : 0);
  // As `bridge fdb`: an FDB entry that names no owner belongs to the device itself.
  if (family === "bridge" && !ntf) ntf = NTF.SELF;
  const state = typeof n.state === "number" ? n.state : STATES[n.state ?? "permanent"];
  const w = sock.begin(type, nlFlags).ndmsg({ family: afOfNeigh(family), index: n.index, state, flags: ntf });
  if (n.ip !== undefined) w.attrBytes(NDA.DST, parseIP(n.ip, family === "bridge" ? undefined : family).bytes);
  else if (n.dst !== undefined) w.attrBytes(NDA.DST, parseIP(n.dst).bytes);
  if (n.mac !== undefined) w.attrBytes(NDA.LLADDR, parseMAC(n.mac));
}

export function addNeigh(sock: NetlinkSocket, n: NeighSpec & AddNeighOpts): void {
  const mode = n.replace ? NLM_F.REPLACE : n.append ? NLM_F.APPEND : NLM_F.EXCL;
  writeNeigh(sock, RTM.NEWNEIGH, NLM_F.CREATE | NLM_F.ACK | mode, n);
  sock.exec(`add ${describe(n)}`);
}

export function delNeigh(sock: NetlinkSocket, n: NeighSpec): void {
  writeNeigh(sock, RTM.DELNEIGH, NLM_F.ACK, n);
  sock.exec(`delete ${describe(n)}`);
}

function parseNeigh(m: Msg): NeighInfo | undefined {
  if (m.type !== RTM.NEWNEIGH) return undefined;
  const af = u8At(m, 0);
  const family: NeighFamily | undefined = af === AF_BRIDGE ? "bridge" : familyOfAf(af);
  if (!family) return undefined;
  const a = msgAttrs(m, NDMSG_LEN);
  const n: NeighInfo = { index: i32At(m, 4), family, state: u16At(m, 8), flags: u8At(m, 10) };
  const ip = a.bytes(NDA.DST);
  if (ip) {
    if (family === "bridge") n.dst = formatIP(ip);
    else n.ip = formatIP(ip, family);
  }
  const mac = a.bytes(NDA.LLADDR);
  if (mac) n.mac = formatMAC(mac);
  return n;
}

export function neighs(sock: NetlinkSocket, o: { index?: number; family?: NeighFamily } = {}): NeighInfo[] {
  const af = o.family === undefined ? 0 : afOfNeigh(o.family);
  const list = sock.dump("list neighbours", RTM.GETNEIGH, (w) => w.ndmsg({ family: af }), parseNeigh);
  return o.index === undefined ? list : list.filter((n) => n.index === o.index);
}
