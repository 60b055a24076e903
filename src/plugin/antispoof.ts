// Anti-spoofing: a pod may only send from its own addresses (and, on a bridge, its own
// MAC). One table per mode owned by mncni; a verdict map sends each host veth's packets
// to that pod's chain, so ADD/DEL touch only their own chain and map element.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { familyOf } from "./family.ts";
import type { Mode } from "./netconf.ts";
import { nftApply, nftJson } from "./nft.ts";

export const ANTISPOOF_TABLE = "mncni-antispoof";

export interface GuardedPod {
  hostIfname: string;
  mac: string;
  /** Plain addresses (no prefix). */
  ips: string[];
}

export interface AntiSpoof {
  attach(p: GuardedPod): void;
  detach(hostIfname: string): void;
  /** Throws when the pod's chain or map element is missing. */
  check(hostIfname: string): void;
}

const set = (items: string[]) => `{ ${items.join(", ")} }`;

/** Rules of one pod's chain; the mode decides the table family and whether MACs matter. */
function podRules(mode: Mode, p: GuardedPod): string[] {
  const v4 = p.ips.filter((i) => familyOf(i) === 4);
  const v6 = p.ips.filter((i) => familyOf(i) === 6);
  const v6Allowed = set(["::", "fe80::/10", ...v6]);
  if (mode === "routed") {
    return [
      v4.length ? `meta nfproto ipv4 ip saddr != ${set(v4)} drop` : "meta nfproto ipv4 drop",
      `meta nfproto ipv6 ip6 saddr != ${v6Allowed} drop`,
    ];
  }
  return [
    `ether saddr != ${p.mac} drop`,
    "ether type vlan drop",
    `ether type arp arp saddr ether != ${p.mac} drop`,
    v4.length ? `ether type arp arp saddr ip != ${set(["0.0.0.0", ...v4])} drop` : "ether type arp drop",
    v4.length ? `ether type ip ip saddr != ${set(v4)} drop` : "ether type ip drop",
    `ether type ip6 ip6 saddr != ${v6Allowed} drop`,
  ];
}

function tableHeader(family: string, chain: string): string {
  return `table ${family} ${ANTISPOOF_TABLE} {\n  map pods {\n    type ifname : verdict\n  }\n  chain ${chain} {\n  }\n}\n`;
}

export function antiSpoofFor(mode: Mode): AntiSpoof {
  const family = mode === "routed" ? "inet" : "bridge";
  const t = `${family} ${ANTISPOOF_TABLE}`;
  return {
    attach(p) {
      const script =
        tableHeader(family, p.hostIfname) +
        `table ${t} {\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n  }\n}\n` +
        `flush chain ${t} prerouting\n` +
        `add rule ${t} prerouting iifname vmap @pods\n` +
        `flush chain ${t} ${p.hostIfname}\n` +
        podRules(mode, p).map((r) => `add rule ${t} ${p.hostIfname} ${r}\n`).join("") +
        `add element ${t} pods { "${p.hostIfname}" : jump ${p.hostIfname} }\n`;
      nftApply(script, `install anti-spoofing rules for "${p.hostIfname}"`);
    },
    detach(hostIfname) {
      // Adding first makes the deletes valid whatever is there: DEL stays idempotent.
      const script =
        tableHeader(family, hostIfname) +
        `add element ${t} pods { "${hostIfname}" : jump ${hostIfname} }\n` +
        `delete element ${t} pods { "${hostIfname}" }\n` +
        `delete chain ${t} ${hostIfname}\n`;
      nftApply(script, `remove anti-spoofing rules for "${hostIfname}"`);
    },
    check(hostIfname) {
      const out = nftJson(["list", "chain", family, ANTISPOOF_TABLE, hostIfname]) as { nftables?: { rule?: unknown }[] } | undefined;
      if (!out || !out.nftables?.some((o) => o.rule)) {
        throw new CniError(ErrorCode.Internal, `anti-spoofing chain for "${hostIfname}" is missing in table ${t}`);
      }
    },
  };
}
