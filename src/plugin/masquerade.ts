// ipMasq for standalone hosts (in a cluster the agent masquerades): traffic from the pod
// ranges to anywhere outside them leaves with the host's address. One table per network,
// removed by the DEL that releases the network's last address.
import { sha256Hex } from "../sys/hash.ts";
import { readdirSync } from "node:fs";
import type { IPConfig } from "../cni/types.ts";
import { safeJoin } from "../cni/names.ts";
import { formatCIDR, maskCIDR, Nftables, parseCIDR, tryParseIP } from "../kernel/index.ts";
import { familyOf } from "./family.ts";
import { nftApply } from "./nft.ts";

export function masqueradeTable(network: string): string {
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

/** Removes the network's table when no address of it is reserved any more. */
export function releaseMasqueradeIfUnused(network: string, dataDir: string): void {
  let inUse = false;
  try {
    inUse = readdirSync(safeJoin(dataDir, network)).some((f) => tryParseIP(f) !== undefined);
  } catch {
    inUse = false;
  }
  if (inUse) return;
  const table = masqueradeTable(network);
  const nft = Nftables.open();
  try {
    if (!nft.table("inet", table)) return;
  } finally {
    nft.close();
  }
  nftApply(`delete table inet ${table}\n`, `remove masquerade table of network "${network}"`);
}
