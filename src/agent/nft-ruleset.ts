// The agent's view of the nftables ruleset: read as JSON (`nft -j list ruleset`), changed by
// scripts applied with `nft -f -` (one transaction each). Spawning nft is fine here; the CNI
// plugin path never does it.
import { runNft as nft } from "../sys/nft.ts";

/** The parts of `nft -j list ruleset` the agent reads. */
export interface NftChain {
  family: string;
  table: string;
  name: string;
  handle: number;
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

export interface NftRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
}

/** A table as listed in the ruleset (src/kernel/nftables.ts's NftTable is the netlink one). */
export interface RulesetTable {
  family: string;
  name: string;
}

export interface NftRuleset {
  tables: RulesetTable[];
  chains: NftChain[];
  rules: NftRule[];
}

export interface Nft {
  list(): NftRuleset;
  apply(script: string, what: string): void;
}

type NftJsonItem = { table?: RulesetTable; chain?: NftChain; rule?: NftRule };

export function parseNftJson(json: unknown): NftRuleset {
  const items = ((json as { nftables?: NftJsonItem[] })?.nftables ?? []) as NftJsonItem[];
  const out: NftRuleset = { tables: [], chains: [], rules: [] };
  for (const i of items) {
    if (i.table) out.tables.push({ family: i.table.family, name: i.table.name });
    if (i.chain) out.chains.push(i.chain);
    if (i.rule) {
      const { family, table, chain, handle, comment } = i.rule;
      out.rules.push({ family, table, chain, handle, ...(comment !== undefined ? { comment } : {}) });
    }
  }
  return out;
}

/** nft in the current network namespace. */
export const systemNft: Nft = {
  list() {
    const r = nft(["-j", "list", "ruleset"]);
    if (r.code !== 0) throw new Error(`cannot list nftables ruleset: ${r.stderr.trim()}`);
    return parseNftJson(JSON.parse(r.stdout));
  },
  apply(script, what) {
    const r = nft(["-f", "-"], script);
    if (r.code !== 0) throw new Error(`cannot ${what}: nft: ${r.stderr.trim()}`);
  },
};
