// `mncni ipam show`: per range set of the conflist, addresses used and free, and the two
// kinds of disagreement between the IPAM and the node: reservations without a live
// attachment (leaks) and attachments without a reservation.
import { parseIp, type Ip } from "../ipam/ip-bigint.ts";
import { rangeUsage, type RangeUse } from "../ipam/usage.ts";
import { addrOf } from "../net/ip.ts";
import type { NodeAttachments } from "./attachments.ts";
import type { NodeView } from "../cni/node-view.ts";

export interface IpamReport {
  node: string;
  dataDir: string;
  ranges: RangeUse[];
  /** Reserved addresses with no host veth and no cached result, with their owner. */
  leaks: { ip: string; containerId: string; ifname: string }[];
  /** Live attachments (host veth or result) without a reservation for their address. */
  unreserved: { containerId: string; ifname: string; ips: string[] }[];
  problems: string[];
}

export function ipamReport(v: NodeView, n: NodeAttachments): IpamReport {
  const problems: string[] = [];
  const reserved: Ip[] = n.attachments.flatMap((a) => a.reservations.map((r) => parseIp(r)!).filter(Boolean));
  let ranges: RangeUse[] = [];
  if (v.ipam === undefined) problems.push(`no ipam section in the conflist of "${v.confDir}"`);
  else {
    try {
      ranges = rangeUsage(v.ipam, reserved);
    } catch (e) {
      problems.push(`cannot read the conflist's ipam section: ${(e as Error).message}`);
    }
  }
  const live = (a: NodeAttachments["attachments"][number]) => !!a.hostVeth || a.resultIps.length > 0;
  return {
    node: n.node,
    dataDir: v.dataDir,
    ranges,
    leaks: n.attachments.filter((a) => !live(a)).flatMap((a) => a.reservations.map((ip) => ({ ip, containerId: a.containerId, ifname: a.ifname }))),
    unreserved: n.attachments
      .filter((a) => live(a) && a.resultIps.some((ip) => !a.reservations.includes(addrOf(ip))) || (a.hostVeth && a.reservations.length === 0))
      .map((a) => ({ containerId: a.containerId, ifname: a.ifname, ips: a.resultIps })),
    problems: [...n.problems, ...problems],
  };
}
