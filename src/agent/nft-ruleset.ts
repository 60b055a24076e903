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
  /**
   * Tables (those with chains), chains, and the rules of every table but the policy table:
   * that one holds tens of thousands of rules, which nft takes hundreds of milliseconds to
   * print, and the policy engine checks it by its handle (src/agent/policy/engine.ts).
   */
  list(): NftRuleset;
  /** The rules of one chain. */
  listChain(family: string, table: string, chain: string): NftRule[];
  apply(script: string, what: string): void;
}

/** Tables whose rules list() leaves out. */
const UNLISTED = new Set(["inet mncni-policy"]);

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
function listJson(args: string[], what: string): NftRuleset {
  const r = nft(["-j", ...args]);
  if (r.code !== 0) throw new Error(`cannot list ${what}: ${r.stderr.trim()}`);
  return parseNftJson(JSON.parse(r.stdout));
}

export const systemNft: Nft = {
  list() {
    // `list chains` is cheap whatever the sets and rules; rules are listed table by table
    // (terse: set elements are never read here).
    const { chains } = listJson(["list", "chains"], "nftables chains");
    const tables: RulesetTable[] = [];
    for (const c of chains) if (!tables.some((t) => t.family === c.family && t.name === c.table)) tables.push({ family: c.family, name: c.table });
    const rules: NftRule[] = [];
    for (const t of tables) {
      if (UNLISTED.has(`${t.family} ${t.name}`)) continue;
      try {
        rules.push(...listJson(["-t", "list", "table", t.family, t.name], `nftables table "${t.family} ${t.name}"`).rules);
      } catch (e) {
        // Deleted between the two listings: it has no rules now.
        if (!/No such file or directory/.test((e as Error).message)) throw e;
      }
    }
    return { tables, chains, rules };
  },
  listChain(family, table, chain) {
    return listJson(["list", "chain", family, table, chain], `nftables chain "${family} ${table} ${chain}"`).rules;
  },
  apply(script, what) {
    const r = nft(["-f", "-"], script);
    if (r.code !== 0) throw new Error(`cannot ${what}: nft: ${r.stderr.trim()}`);
  },
};
