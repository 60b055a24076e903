// A cheap structural hash of a table as the kernel has it, read over netlink: per chain, its
// header (type, hook, priority, policy) and its rules in order (their expressions as the
// kernel encodes them, counters zeroed, and comments); the table's fingerprint combines the
// chains'. Handles are left out (a rule deleted and added back the same is the same rule),
// and so are set elements (the owner corrects those separately). The engine records it after
// each structural write and compares it on adoption: any hand edit of a chain changes it.
// Chains are hashed one by one so a write that changed a few chains re-reads only those
// (a table of 13,500 rules takes ~100 ms to list whole, one chain ~0.4 ms).
import { createHash } from "node:crypto";
import type { Nftables, NftChainInfo, NftRuleInfo } from "../kernel/index.ts";
import type { TableName } from "./names.ts";

/** Chain name -> the hash of its header and rules. */
export type ChainPrints = Map<string, string>;

function chainPrint(c: NftChainInfo, rules: readonly NftRuleInfo[]): string {
  const h = createHash("sha256");
  h.update(`${c.type ?? ""}\0${c.hook ?? ""}\0${c.prio ?? ""}\0${c.policy ?? ""}\n`);
  for (const r of rules) {
    h.update(`${r.comment ?? ""}\0`);
    if (r.expressions) h.update(r.expressions);
    h.update("\n");
  }
  return h.digest("hex").slice(0, 16);
}

/**
 * The prints of the table's chains: all of them (one listing of the table), or of `only`
 * (one listing each), updating `into`; a chain in `only` the kernel no longer has is dropped.
 */
export function chainPrints(nl: Nftables, t: TableName, only?: Iterable<string>, into: ChainPrints = new Map()): ChainPrints {
  const chains = new Map(nl.chains(t.family, t.name).map((c) => [c.name, c]));
  if (only === undefined) {
    into.clear();
    const byChain = new Map<string, NftRuleInfo[]>();
    for (const r of nl.rules(t.family, t.name, undefined, true)) {
      const l = byChain.get(r.chain);
      if (l) l.push(r);
      else byChain.set(r.chain, [r]);
    }
    for (const [name, c] of chains) into.set(name, chainPrint(c, byChain.get(name) ?? []));
    return into;
  }
  for (const name of only) {
    const c = chains.get(name);
    if (c) into.set(name, chainPrint(c, nl.rules(t.family, t.name, name, true)));
    else into.delete(name);
  }
  // Chains gone by other means (never by a write of the engine's, which names them).
  for (const name of into.keys()) if (!chains.has(name)) into.delete(name);
  return into;
}

/** The table's fingerprint from its chains' prints. */
export function combine(prints: ChainPrints): string {
  const h = createHash("sha256");
  for (const name of [...prints.keys()].sort()) h.update(`${name}\0${prints.get(name)}\n`);
  return h.digest("hex").slice(0, 16);
}
