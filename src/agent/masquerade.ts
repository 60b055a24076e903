// Egress masquerade and forward acceptance, rendered as one mncni-owned nftables table
// (`inet mncni`) that is replaced atomically (its comment carries the hash of its body, so
// the table's netlink listing tells whether the kernel has it), plus accept rules that the agent inserts at the
// top of *foreign* forward base chains whose policy is drop.
//
// Why the foreign rules: in nftables a packet dropped by any base chain is dropped, whatever
// other tables accept, so an accept in our own table cannot override e.g. Docker's
// `ip filter FORWARD` with policy drop. Flannel and kube-router solve the same problem by
// adding ACCEPT rules for the pod network to the FORWARD chain of the filter table; we do the
// same, tagged with a comment so they can be found, updated and removed (by handle) without
// touching anything else in those tables.
import { createHash } from "node:crypto";
import type { NftRuleset } from "./nft-ruleset.ts";
import { MASQUERADE, ownsTable } from "../firewall/names.ts";
import { type Family, familyOf } from "../net/ip.ts";
import { collapseCIDRs } from "../net/cidr.ts";

const NAT_TABLE = MASQUERADE.name;
const NAT_FAMILY = MASQUERADE.family;
const MARKER = MASQUERADE.layoutPrefix;
const FOREIGN_MARKER = MASQUERADE.foreignPrefix;
/** Never masqueraded (ip-masq-agent's default without masqLinkLocal). */
const LINK_LOCAL = ["169.254.0.0/16", "fe80::/10"];

export interface MasqueradeInput {
  /** This node's pod CIDRs: the sources that get masqueraded. */
  podCIDRs: string[];
  /** Everything that is pod network: never NATed as a destination, accepted when forwarding. */
  podNetworks: string[];
  /** Destinations reached with the pod's own address (ip-masq-agent's nonMasqueradeCIDRs). */
  nonMasquerade: string[];
}

const proto = (f: Family) => (f === 4 ? "ip" : "ip6");
const set = (cidrs: string[]) => `{ ${cidrs.join(", ")} }`;
const ofFamily = (cidrs: string[], f: Family) => cidrs.filter((c) => familyOf(c) === f);
const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

function masqueradeRules(i: MasqueradeInput): string[] {
  const exempt = collapseCIDRs([...i.nonMasquerade, ...i.podNetworks, ...i.podCIDRs, ...LINK_LOCAL]);
  const sources = collapseCIDRs(i.podCIDRs);
  return ([4, 6] as const).flatMap((f) => {
    const src = ofFamily(sources, f);
    if (!src.length) return [];
    const p = proto(f);
    return [`${p} saddr ${set(src)} ${p} daddr != ${set(ofFamily(exempt, f))} counter masquerade comment "pod egress"`];
  });
}

function acceptRules(networks: string[], families: Family[]): string[] {
  const nets = collapseCIDRs(networks);
  return families.flatMap((f) => {
    const n = ofFamily(nets, f);
    if (!n.length) return [];
    const p = proto(f);
    return [`${p} saddr ${set(n)} counter accept`, `${p} daddr ${set(n)} counter accept`];
  });
}

/** The body of our table; its hash, kept in a marker rule, tells whether the kernel has it. */
function tableBody(i: MasqueradeInput): string {
  const networks = [...i.podNetworks, ...i.podCIDRs];
  const [postrouting, forward] = MASQUERADE.chains;
  return [
    `  chain ${postrouting} {`,
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...masqueradeRules(i).map((r) => `    ${r}`),
    "  }",
    `  chain ${forward} {`,
    "    type filter hook forward priority filter; policy accept;",
    ...acceptRules(networks, [4, 6]).map((r) => `    ${r}`),
    "  }",
  ].join("\n");
}

export interface MasqueradePlan {
  /** The nft script to apply, empty when the kernel already matches. */
  script: string;
  /** What the script changes, for logs. */
  changes: string[];
}

/** The hash recorded in our table's comment, if the table exists. */
function installedHash(current: NftRuleset): string | undefined {
  const t = current.tables.find((t) => t.family === NAT_FAMILY && t.name === NAT_TABLE);
  return t?.comment?.startsWith(MARKER) ? t.comment.slice(MARKER.length) : undefined;
}

const FAMILIES_OF_TABLE: Record<string, Family[]> = { ip: [4], ip6: [6], inet: [4, 6] };

/** What the input asks for: the table's body and hash, and the foreign rules' hash. */
interface Desired {
  body: string;
  h: string;
  fh: string;
  networks: string[];
}

/**
 * The last input and what it asks for: a pass whose pod networks did not change (most; the
 * list holds every Node's pod CIDR) does not collapse and hash them again. Same input, same
 * result: planMasquerade stays pure.
 */
let last: { key: string; desired: Desired } | undefined;

function desired(i: MasqueradeInput): Desired {
  const key = `${i.podCIDRs.join()}|${i.podNetworks.join()}|${i.nonMasquerade.join()}`;
  if (last?.key === key) return last.desired;
  const body = tableBody(i);
  const networks = [...i.podNetworks, ...i.podCIDRs];
  const d = { body, h: hash(body), fh: hash(collapseCIDRs(networks).join(",")), networks };
  last = { key, desired: d };
  return d;
}

/** Desired state of both parts, diffed against the current ruleset. Pure. */
export function planMasquerade(i: MasqueradeInput, current: NftRuleset): MasqueradePlan {
  const changes: string[] = [];
  let script = "";
  const { body, h, fh, networks } = desired(i);
  if (installedHash(current) !== h) {
    const t = `${NAT_FAMILY} ${NAT_TABLE}`;
    // Create-if-missing, delete, define: one transaction, so the table is never half there.
    script += `table ${t} {}\ndelete table ${t}\ntable ${t} {\n  comment "${MARKER}${h}"\n${body}\n}\n`;
    changes.push(`replace table ${t}`);
  }
  const ours = (c?: string) => c?.startsWith(FOREIGN_MARKER) ?? false;
  for (const c of current.chains) {
    if (ownsTable(c.family, c.table)) continue;
    const mine = current.rules.filter((r) => r.family === c.family && r.table === c.table && r.chain === c.name && ours(r.comment));
    const needs = c.hook === "forward" && c.policy === "drop" && FAMILIES_OF_TABLE[c.family] !== undefined;
    const upToDate = mine.length > 0 && mine.every((r) => r.comment === `${FOREIGN_MARKER}${fh}`);
    if (needs && upToDate) continue;
    if (!needs && mine.length === 0) continue;
    const where = `${c.family} ${c.table} ${c.name}`;
    for (const r of mine) script += `delete rule ${where} handle ${r.handle}\n`;
    if (needs) {
      for (const r of acceptRules(networks, FAMILIES_OF_TABLE[c.family]!)) script += `insert rule ${where} ${r} comment "${FOREIGN_MARKER}${fh}"\n`;
      changes.push(`accept pod traffic in foreign forward chain "${where}" (policy drop)`);
    } else {
      changes.push(`remove accept rules from foreign chain "${where}"`);
    }
  }
  return { script, changes };
}

/** Removes our table and every rule we inserted elsewhere. Pure. */
export function planMasqueradeRemoval(current: NftRuleset): string {
  let script = "";
  if (current.tables.some((t) => t.family === NAT_FAMILY && t.name === NAT_TABLE)) script += `delete table ${NAT_FAMILY} ${NAT_TABLE}\n`;
  for (const r of current.rules) {
    if (r.table === NAT_TABLE && r.family === NAT_FAMILY) continue;
    if (r.comment?.startsWith(FOREIGN_MARKER)) script += `delete rule ${r.family} ${r.table} ${r.chain} handle ${r.handle}\n`;
  }
  return script;
}
