// The agent's view of the nftables ruleset, read over netlink (no `nft` process per pass:
// listing with nft cost 12-51 ms a pass): every table with its comment, every chain, and the
// rules of the foreign forward base chains (where the agent inserts its accept rules). The
// tables mncni owns are checked by their owners, by comment or fingerprint, never listed
// here. Changes are scripts applied with `nft -f -` (one transaction each); spawning nft is
// fine here, the CNI plugin path never does it.
import { Nftables } from "../kernel/index.ts";
import { ownsTable } from "../firewall/names.ts";
import { runNft as nft } from "../sys/nft.ts";

/** The parts of a chain the agent reads. */
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
  comment?: string;
}

export interface NftRuleset {
  tables: RulesetTable[];
  chains: NftChain[];
  /** Only the rules of foreign base chains on the forward hook. */
  rules: NftRule[];
}

export interface Nft {
  /** Tables, chains, and the rules of foreign forward base chains (see top). */
  list(): NftRuleset;
  apply(script: string, what: string): void;
}

/** Reads the ruleset on an open socket. */
export function readRuleset(nl: Nftables): NftRuleset {
  const tables: RulesetTable[] = nl.tables().map((t) => ({ family: t.family, name: t.name, ...(t.comment !== undefined ? { comment: t.comment } : {}) }));
  const chains: NftChain[] = nl.chains().map((c) => ({
    family: c.family, table: c.table, name: c.name, handle: Number(c.handle),
    ...(c.type !== undefined ? { type: c.type } : {}),
    ...(c.hook !== undefined ? { hook: c.hook } : {}),
    ...(c.prio !== undefined ? { prio: c.prio } : {}),
    ...(c.policy !== undefined ? { policy: c.policy } : {}),
  }));
  const rules: NftRule[] = [];
  for (const c of chains) {
    if (c.hook !== "forward" || ownsTable(c.family, c.table)) continue;
    for (const r of nl.rules(c.family as Parameters<Nftables["rules"]>[0], c.table, c.name)) {
      rules.push({ family: r.family, table: r.table, chain: r.chain, handle: Number(r.handle), ...(r.comment !== undefined ? { comment: r.comment } : {}) });
    }
  }
  return { tables, chains, rules };
}

export const systemNft: Nft = {
  list() {
    const nl = Nftables.open();
    try {
      return readRuleset(nl);
    } finally {
      nl.close();
    }
  },
  apply(script, what) {
    const r = nft(["-f", "-"], script);
    if (r.code !== 0) throw new Error(`cannot ${what}: nft: ${r.stderr.trim()}`);
  },
};
