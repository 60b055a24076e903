// The plugin's ipMasq, for standalone hosts (in a cluster the agent masquerades): traffic
// from the pod ranges to anywhere outside them leaves with the host's address. One table
// per network, removed by the DEL of the network's last host veth. Written whole through
// src/firewall/owned-table.ts: its comment carries the hash of its rules, so an ADD whose
// network's table is already right costs one netlink lookup, not an nft run.
import type { IPConfig } from "../cni/types.ts";
import { CniError } from "../cni/errors.ts";
import { Netlink } from "../kernel/index.ts";
import { sha256Hex } from "../sys/hash.ts";
import { hostVethsOf } from "./hostveth.ts";
import { nftApply } from "./nft-apply.ts";
import { withNftables } from "./nft-socket.ts";
import { IPMASQ } from "../firewall/names.ts";
import { ensureTable, removeTable } from "../firewall/owned-table.ts";
import { familyOf, formatCIDR, parseCIDR } from "../net/ip.ts";
import { maskCIDR } from "../net/cidr.ts";

function masqueradeTable(network: string): string {
  return IPMASQ.prefix + sha256Hex(network).slice(0, 8);
}

/** The subnet of "10.244.1.5/24": "10.244.1.0/24". */
function subnetOf(cidr: string): string {
  const c = maskCIDR(parseCIDR(cidr));
  return formatCIDR(c.bytes, c.prefixLen, c.family);
}

export function ensureMasquerade(network: string, ips: IPConfig[]): void {
  const rules = ips.map((ip) => {
    const p = familyOf(ip.address) === 4 ? "ip" : "ip6";
    const net = subnetOf(ip.address);
    return `    ${p} saddr ${net} ${p} daddr != ${net} masquerade comment "mncni ipMasq ${network}"\n`;
  }).join("");
  const body = `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n${rules}  }\n`;
  const table = { family: IPMASQ.family, name: masqueradeTable(network), comment: `mncni ipMasq ${sha256Hex(body).slice(0, 16)}`, body };
  const what = `set up masquerade for network "${network}"`;
  withNftables(what, (nft) => {
    try {
      ensureTable(nft, table, nftApply);
    } catch (e) {
      // The engine's error names the table, not the network it serves: say both.
      if (e instanceof CniError) throw new CniError(e.code, `cannot ${what}: ${e.message}`, e.details, { cause: e });
      throw e;
    }
  });
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
  const table = { family: IPMASQ.family, name: masqueradeTable(network) };
  withNftables(`remove masquerade table of network "${network}"`, (nft) => removeTable(nft, table, nftApply));
}
