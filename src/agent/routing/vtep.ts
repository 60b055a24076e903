// What a node's VXLAN endpoint looks like to the others, derived from what every node already
// publishes (its InternalIP and pod CIDRs), so no annotation has to be written and read back:
// Flannel and Calico publish the VTEP MAC on the Node; mncni computes it instead.
//
// - MAC: locally administered unicast. Over IPv4, 0a:58 followed by the four address bytes
//   (injective, and readable in `bridge fdb`). Over IPv6 the address does not fit: 0e followed
//   by the first five bytes of SHA-256 of the sixteen address bytes (a collision between two
//   nodes of one cluster has odds of about n²/2⁴¹).
// - Gateway: the network address of the peer's pod CIDR (as Flannel), an "onlink" next hop on
//   the device whose permanent neighbour entry carries the peer's VTEP MAC. No address is
//   assigned to the device.
import { createHash } from "node:crypto";
import { formatIP, formatMAC, parseCIDR, parseIP, type Family } from "../../net/ip.ts";
import { maskCIDR } from "../../net/cidr.ts";

/** The VTEP MAC of the node whose underlay address is `ip`. */
export function vtepMAC(ip: string): string {
  const { family, bytes } = parseIP(ip);
  if (family === 4) return formatMAC(Uint8Array.of(0x0a, 0x58, ...bytes));
  const h = createHash("sha256").update(bytes).digest();
  return formatMAC(Uint8Array.of(0x0e, ...h.subarray(0, 5)));
}

/** The onlink next hop for a peer's pod CIDR: its network address. */
export function vtepGateway(podCIDR: string): string {
  const c = maskCIDR(parseCIDR(podCIDR));
  return formatIP(c.bytes, c.family);
}

/** Bytes VXLAN adds to each pod packet: outer IP (20 or 40) + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const vxlanOverhead = (underlay: Family): number => (underlay === 4 ? 50 : 70);

/** The device of each underlay family. */
export const VXLAN_DEVICES: Record<Family, string> = { 4: "mncni.vxlan", 6: "mncni.vxlan6" };
