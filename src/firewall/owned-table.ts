// Tables written whole: their layout (or the hash of their content) is the table's comment,
// so whether the kernel has the right one is one netlink lookup (no `nft` process, no
// listing), and writing one is one `nft -f` transaction. Used by every table mncni owns but
// the policy table, which changes incrementally (./table-engine.ts).
//
// Creating is race-safe without a lock: the script starts with `create table`, which fails
// with EEXIST when the table exists, and nft sends the whole script as one transaction, which
// the kernel serialises against every other and commits whole or not at all. Of 20 ADDs
// racing on a fresh node exactly one creates the table; the others' transactions are
// rejected whole and they carry on with the winner's. Replacing deletes the old table by its
// handle in the same transaction, so of racing replacers only the first succeeds.
import type { Nftables, NftTable } from "../kernel/index.ts";
import { type TableName, tableRef } from "./names.ts";

/** Applies an nft script as one transaction (the agent's and the plugin's differ in how they report failure). */
export type ApplyScript = (script: string, what: string) => void;

export interface WholeTable extends TableName {
  /** The table's comment: names the layout, or carries a hash of the body. */
  comment: string;
  /** The table's contents (sets and chains), without the `table` line. */
  body: string;
}

/**
 * What to do with a table of that name whose comment is not ours: "replace" it, "keep" it
 * (e.g. it holds elements others wrote and an older layout still works), or throw an error
 * saying why it may not be touched.
 */
export type OnOther = (current: NftTable) => "replace" | "keep" | Error;

export type Ensured = "present" | "created" | "replaced" | "kept";

/** Makes the kernel have `t` (one lookup when it does). */
export function ensureTable(nft: Nftables, t: WholeTable, apply: ApplyScript, onOther: OnOther = () => "replace"): Ensured {
  const current = nft.table(t.family, t.name);
  if (current?.comment === t.comment) return "present";
  if (current) {
    const what = onOther(current);
    if (what instanceof Error) throw what;
    if (what === "keep") return "kept";
  }
  const replace = current ? `delete table ${t.family} handle ${current.handle}\n` : "";
  try {
    apply(replace + tableScript(t), `${current ? "replace" : "create"} table ${tableRef(t)}`);
  } catch (e) {
    // Another writer won the race and our transaction was rejected whole: use its table.
    if (nft.table(t.family, t.name)?.comment === t.comment) return "present";
    throw e;
  }
  return current ? "replaced" : "created";
}

/** The script that creates `t` (fails whole when the table exists: see top). */
export function tableScript(t: WholeTable): string {
  return `create table ${tableRef(t)} { comment "${t.comment}"; }\ntable ${tableRef(t)} {\n${t.body.replace(/\n*$/, "\n")}}\n`;
}

/** Deletes the table when present; returns whether it was. */
export function removeTable(nft: Nftables, t: TableName, apply: ApplyScript): boolean {
  const current = nft.table(t.family, t.name);
  if (!current) return false;
  apply(`delete table ${t.family} handle ${current.handle}\n`, `remove table ${tableRef(t)}`);
  return true;
}
