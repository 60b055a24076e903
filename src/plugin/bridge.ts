// Bridge mode (kubenet style): pods' host veths are ports of one bridge (cbr0) that holds
// each range's gateway address; pods reach the gateway and each other on layer 2.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { IPConfig } from "../cni/types.ts";
import type { Link, Netlink } from "../kernel/index.ts";
import { addrSet, FAMILIES, macsSet, portsSet, sourceRule, type AntiSpoofLayout } from "./antispoof.ts";
import type { Family, Gateway, HostSide, ModePolicy, PreparedHost } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";
import { familyOf } from "../net/ip.ts";

/** "10.244.1.0/24" style prefix of a pod address, applied to its gateway. */
function gatewayCidr(ip: IPConfig): string | undefined {
  if (!ip.gateway) return undefined;
  return `${ip.gateway}/${ip.address.split("/")[1]}`;
}

/**
 * A random locally administered unicast MAC. A bridge created without one takes the lowest
 * MAC of its ports and changes it as pods come and go: the Result would report a stale MAC
 * and pods would keep sending to a gateway MAC that no longer exists. Set, it stays.
 */
function bridgeMac(): string {
  // Web Crypto is a global: no node:crypto module to load on the ADD path.
  const b = crypto.getRandomValues(new Uint8Array(6));
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

function ensureBridge(host: Netlink, conf: PluginConf): Link {
  let br = host.link(conf.bridge);
  if (!br) {
    try {
      host.addBridge({ name: conf.bridge, mtu: conf.mtu, mac: bridgeMac() });
    } catch (e) {
      // Another ADD running in parallel created it first.
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    }
    br = host.link(conf.bridge);
  }
  if (!br) throw new CniError(ErrorCode.IOFailure, `cannot create bridge "${conf.bridge}"`);
  if (br.kind !== "bridge") {
    throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot use "${conf.bridge}" as bridge: it exists and is a ${br.kind ?? "non-bridge"} device`);
  }
  if (!br.up || (conf.promiscMode && !br.promisc)) host.setLink(br.index, { up: true, ...(conf.promiscMode ? { promisc: true } : {}) });
  return br;
}

/**
 * Layer 2 as well as layer 3: a pod may only send from its own MAC (Ethernet source and ARP
 * sender), not VLAN-tag, and only from its own addresses (ARP sender IP included).
 */
const antiSpoof: AntiSpoofLayout = {
  family: "bridge",
  sets: [portsSet, macsSet, ...FAMILIES.map(addrSet)],
  rules: [
    "iifname != @ports accept",
    "iifname . ether saddr != @macs drop",
    "ether type vlan drop",
    "ether type arp iifname . arp saddr ether != @macs drop",
    // An ARP probe announces 0.0.0.0 as its sender.
    "ether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @addr4 drop",
    ...FAMILIES.map((f) => sourceRule(f, { 4: "ether type ip", 6: "ether type ip6" })),
  ],
};

export const bridgeMode: ModePolicy = {
  prepareHost(h: HostSide, ips: IPConfig[]): PreparedHost {
    const br = ensureBridge(h.host, h.conf);
    // Adding what is there already fails with EEXIST: one request per gateway, where listing
    // the bridge's addresses would dump every address on the node (a link-local per veth).
    for (const ip of ips) {
      const gw = gatewayCidr(ip);
      if (!gw) continue;
      try {
        h.host.addAddr(br.index, gw, { noDad: familyOf(ip.address) === 6 });
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
      }
    }
    return {
      interfaces: [{ name: br.name, mac: br.mac }],
      wireHostVeth(veth: Link): void {
        h.host.setLink(veth.index, { master: br.index, up: true });
        if (h.conf.hairpinMode) h.host.setBridgePort(veth.index, { hairpin: true });
      },
    };
  },

  podAddress: (ip) => ip.address,

  gateway(_family: Family, ip: IPConfig): Gateway {
    if (!ip.gateway) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot route pod traffic: IPAM returned no gateway for ${ip.address}`);
    return { gw: ip.gateway, onlink: false };
  },

  checkHost(h, veth, ips): void {
    const br = h.host.link(h.conf.bridge);
    if (!br || br.kind !== "bridge") throw new CniError(ErrorCode.Internal, `bridge "${h.conf.bridge}" is missing`);
    if (veth.master !== br.index) throw new CniError(ErrorCode.Internal, `host veth "${veth.name}" is not attached to bridge "${br.name}"`);
    const present = new Set(h.host.addrs({ index: br.index }).map((a) => a.cidr));
    for (const ip of ips) {
      const gw = gatewayCidr(ip);
      if (gw && !present.has(gw)) throw new CniError(ErrorCode.Internal, `bridge "${br.name}" lacks gateway address ${gw}`);
    }
  },

  status(h): void {
    const br = h.host.link(h.conf.bridge);
    if (br && br.kind !== "bridge") {
      throw new CniError(ErrorCode.PluginNotAvailable, `cannot create bridge "${h.conf.bridge}": a ${br.kind ?? "non-bridge"} device has that name`);
    }
  },

  antiSpoof,
};
