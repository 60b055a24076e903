// Routed mode (Azure transparent / Calico style): no bridge. The host reaches each pod
// through a /32 (/128) route on the pod's host veth; the pod sends everything to a
// link-local gateway whose MAC is pinned to the host veth, so it never ARPs for it.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { IPConfig } from "../cni/types.ts";
import { RTPROT_MNCNI, sysctlSet, type Link } from "../kernel/index.ts";
import { addrSet, FAMILIES, portsSet, sourceRule, type AntiSpoofLayout } from "./antispoof.ts";
import type { Family, Gateway, HostSide, ModePolicy, PreparedHost } from "./mode.ts";
import { addrOf, familyOf, hostPrefix } from "../net/ip.ts";

const ROUTED_GATEWAY: Record<Family, string> = { 4: "169.254.1.1", 6: "fe80::1" };

const hostRoute = (ip: IPConfig, veth: Link) => {
  const family = familyOf(ip.address);
  return { dst: `${addrOf(ip.address)}/${hostPrefix(family)}`, oif: veth.index, scope: "link" as const, protocol: RTPROT_MNCNI };
};

/** Layer 3 only (every packet is routed by the node, no layer 2 to guard): the pod's own addresses. */
const antiSpoof: AntiSpoofLayout = {
  family: "inet",
  sets: [portsSet, ...FAMILIES.map(addrSet)],
  rules: ["iifname != @ports accept", ...FAMILIES.map((f) => sourceRule(f, { 4: "meta nfproto ipv4", 6: "meta nfproto ipv6" }))],
};

export const routedMode: ModePolicy = {
  prepareHost: (h: HostSide): PreparedHost => ({
    interfaces: [],
    wireHostVeth(veth: Link, ips: IPConfig[]): void {
      // The host veth's link-local address must be usable at once for neighbour discovery.
      if (ips.some((i) => familyOf(i.address) === 6)) sysctlSet(`net.ipv6.conf.${veth.name}.accept_dad`, 0);
      h.host.setLink(veth.index, { up: true });
      // Routes go away with the veth, so the veth's own undo covers them.
      for (const ip of ips) h.host.replaceRoute(hostRoute(ip, veth));
    },
  }),

  podAddress: (ip) => `${addrOf(ip.address)}/${hostPrefix(familyOf(ip.address))}`,

  gateway(family: Family, _ip: IPConfig, hostVeth: Link): Gateway {
    // A netkit (L3) host end has no MAC and the pod end does no neighbour resolution at all.
    return { gw: ROUTED_GATEWAY[family], onlink: family === 4, ...(hostVeth.mac ? { neighMac: hostVeth.mac } : {}) };
  },

  checkHost(h, veth, ips): void {
    if (!veth.up) throw new CniError(ErrorCode.Internal, `host veth "${veth.name}" is down`);
    const routes = h.host.routes({ oif: veth.index });
    for (const ip of ips) {
      const want = hostRoute(ip, veth).dst;
      if (!routes.some((r) => r.dst === want && r.oif === veth.index)) {
        throw new CniError(ErrorCode.Internal, `host route ${want} dev ${veth.name} is missing`);
      }
    }
  },

  status: () => {},

  // Routed pods need no layer 2: netkit's L3 mode (no MAC, no ARP) fits them.
  netkitMode: "l3",

  antiSpoof,
};
