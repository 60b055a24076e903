// Interface addresses (RTM_*ADDR), IPv4 and IPv6 through the same code.
import { IFA, IFA_F, IFADDRMSG_LEN, NLM_F, RTM, msgAttrs, u8At, u32At, type Msg } from "./codec.ts";
import { afOf, familyOfAf } from "./constants.ts";
import { broadcastOf } from "../net/cidr.ts";
import { formatCIDR, formatIP, parseCIDR, type Family } from "../net/ip.ts";
import type { NetlinkSocket } from "./socket.ts";

export interface Addr {
  index: number;
  family: Family;
  /** "10.1.2.3/24" */
  cidr: string;
  address: string;
  prefixLen: number;
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present, so flags above 0xff are included) */
  flags: number;
}

export interface AddAddrOpts {
  /** Skip IPv6 duplicate address detection: the address is usable at once. */
  noDad?: boolean;
  /** Replace an existing identical address instead of failing with EEXIST. */
  replace?: boolean;
  scope?: number;
}

function writeAddr(sock: NetlinkSocket, type: number, flags: number, index: number, cidr: string, o: AddAddrOpts = {}): void {
  const c = parseCIDR(cidr);
  const ifaFlags = o.noDad ? IFA_F.NODAD : 0;
  const w = sock.begin(type, flags).ifaddrmsg({
    family: afOf(c.family), prefixLen: c.prefixLen, flags: ifaFlags & 0xff, scope: o.scope ?? 0, index,
  });
  w.attrBytes(IFA.LOCAL, c.bytes).attrBytes(IFA.ADDRESS, c.bytes);
  if (type === RTM.NEWADDR) {
    // Like the reference plugins: an IPv4 address gets its subnet's broadcast address.
    if (c.family === 4 && c.prefixLen < 31) w.attrBytes(IFA.BROADCAST, broadcastOf(c));
    if (ifaFlags) w.attrU32(IFA.FLAGS, ifaFlags);
  }
}

export function addAddr(sock: NetlinkSocket, index: number, cidr: string, o: AddAddrOpts = {}): void {
  const flags = NLM_F.CREATE | NLM_F.ACK | (o.replace ? NLM_F.REPLACE : NLM_F.EXCL);
  writeAddr(sock, RTM.NEWADDR, flags, index, cidr, o);
  sock.exec(`add address "${cidr}" to link "${index}"`);
}

export function delAddr(sock: NetlinkSocket, index: number, cidr: string): void {
  writeAddr(sock, RTM.DELADDR, NLM_F.ACK, index, cidr);
  sock.exec(`delete address "${cidr}" from link "${index}"`);
}

function parseAddr(m: Msg): Addr | undefined {
  if (m.type !== RTM.NEWADDR) return undefined;
  const family = familyOfAf(u8At(m, 0));
  if (!family) return undefined;
  const a = msgAttrs(m, IFADDRMSG_LEN);
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  const bytes = a.bytes(IFA.LOCAL) ?? a.bytes(IFA.ADDRESS);
  if (!bytes) return undefined;
  const prefixLen = u8At(m, 1);
  const address = formatIP(bytes, family);
  return {
    index: u32At(m, 4),
    family,
    cidr: formatCIDR(bytes, prefixLen, family),
    address,
    prefixLen,
    scope: u8At(m, 3),
    flags: a.u32(IFA.FLAGS) ?? u8At(m, 2),
  };
}

export function addrs(sock: NetlinkSocket, o: { index?: number; family?: Family } = {}): Addr[] {
  const af = o.family ? afOf(o.family) : 0;
  const list = sock.dump("list addresses", RTM.GETADDR, (w) => w.ifaddrmsg({ family: af }), parseAddr);
  return o.index === undefined ? list : list.filter((a) => a.index === o.index);
}
