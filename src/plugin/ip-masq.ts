// The plugin's ipMasq, for standalone hosts (in a cluster the agent masquerades): traffic
// from the pod ranges to anywhere outside them leaves with the host's address. One table
// per network, removed by the DEL of the network's last host veth.
import type { IPConfig } from "../cni/types.ts";
import { Netlink, Nftables } from "../kernel/index.ts";
import { sha256Hex } from "../sys/hash.ts";
import { hostVethsOf } from "./hostveth.ts";
import { nftApply } from "./nft-apply.ts";
import { familyOf, formatCIDR, parseCIDR } from "../net/ip.ts";
import { maskCIDR } from "../net/cidr.ts";

function masqueradeTable(network: string): string {
  return "mncni-masq-" + sha256Hex(network).slice(0, 8);
}

/** The subnet of "10.244.1.5/24": "10.244.1.0/24". */
function subnetOf(cidr: string): string {
  const c = maskCIDR(parseCIDR(cidr));
  return formatCIDR(c.bytes, c.prefixLen, c.family);
}

export function ensureMasquerade(network: string, ips: IPConfig[]): void {
  const t = `inet ${masqueradeTable(network)}`;
  const rules = ips.map((ip) => {
    const p = familyOf(ip.address) === 4 ? "ip" : "ip6";
    const net = subnetOf(ip.address);
    return `add rule ${t} postrouting ${p} saddr ${net} ${p} daddr != ${net} masquerade comment "mncni ipMasq ${network}"\n`;
  });
  const script =
    `table ${t} {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n  }\n}\n` +
    `flush chain ${t} postrouting\n` +
    rules.join("");
  nftApply(script, `set up masquerade for network "${network}"`);
}

/**
 * Removes the network's table when no host veth of the network is left but `leaving` (the
 * one DEL is deleting). Host veths, found by their alias as GC finds them, count the
 * network's attachments whatever IPAM plugin (and dataDir) holds their addresses.
 */
export function releaseMasqueradeIfUnused(network: string, leaving: string): void {
  const host = Netlink.open();
  try {
    if (hostVethsOf(host, network).some((l) => l.name !== leaving)) return;
  } finally {
    host.close();
  }
  const table = masqueradeTable(network);
  const nft = Nftables.open();
  try {
    if (!nft.table("inet", table)) return;
  } finally {
    nft.close();
  }
  nftApply(`delete table inet ${table}\n`, `remove masquerade table of network "${network}"`);
}
