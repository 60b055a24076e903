// A cheap structural hash of a table as the kernel has it, read over netlink: its chains
// (name, type, hook, priority, policy) and their rules in order (each expression's name and
// attributes, and the comment). Counters are left out (they change with traffic), and so are
// handles (a rule deleted and added back the same is the same rule) and set elements (the
// owner corrects those separately). Recorded by the engine after each structural write and
// compared on adoption: any hand edit of a chain changes it.
import { createHash } from "node:crypto";
import type { Nftables } from "../kernel/index.ts";
import type { TableName } from "./names.ts";

/** Expressions whose attributes are state, not configuration. */
const STATEFUL = new Set(["counter", "quota", "last", "connlimit"]);

export function fingerprint(nl: Nftables, t: TableName): { hash: string; chains: number; rules: number } {
  const h = createHash("sha256");
  const chains = nl.chains(t.family, t.name).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of chains) h.update(`chain\0${c.name}\0${c.type ?? ""}\0${c.hook ?? ""}\0${c.prio ?? ""}\0${c.policy ?? ""}\n`);
  const rules = nl.rules(t.family, t.name, undefined, true);
  for (const r of rules) {
    h.update(`rule\0${r.chain}\0${r.comment ?? ""}\0`);
    for (const e of r.exprs) {
      h.update(e.name);
      h.update("\0");
      if (!STATEFUL.has(e.name)) h.update(e.data);
    }
    h.update("\n");
  }
  return { hash: h.digest("hex").slice(0, 16), chains: chains.length, rules: rules.length };
}
