// The policy engine: keeps table `inet mncni-policy` equal to what the policies and pods ask
// for, changing only what changed. Three ways to write, cheapest first:
// - only set elements changed (a pod came, went, was relabelled): one netlink batch, atomic,
//   no process started;
// - the structure changed (a policy): one `nft -f` transaction with the chains and sets that
//   differ and the element changes;
// - the kernel's table is not the one this engine last wrote (first pass, a failed write, a
//   table changed behind its back): a table with this structure is adopted (its elements
//   corrected over netlink); any other is replaced whole in one transaction.
import type { ClusterState, Direction } from "../../cluster/types.ts";
import { decodeKey, encodeKey, Nftables, type NftKeyType, type SetElement, type SetElemChange } from "../../kernel/index.ts";
import type { Nft } from "../nft-ruleset.ts";
import { compilePolicy, POLICY_FAMILY, POLICY_TABLE, type PolicyStructure, setType } from "./compile.ts";
import { type ElementDelta, Members } from "./members.ts";
import { deltaScript, installedHash, MARKER_CHAIN, T, tableScript } from "./plan.ts";

export interface PolicySync {
  changes: string[];
  /** Kernel writes made (0 when nothing changed). */
  writes: number;
  structure: PolicyStructure;
  /** Whether some policy selects a pod of this node. */
  anySelected: boolean;
}

export interface PolicyEngineOptions {
  nodeName: string;
  logAccepts?: boolean;
  /** Runs `nft` (scripts, terse listings). */
  nft: Nft;
  /** The netlink side for elements; opened on first use in the agent's namespace. */
  netlink?: () => Nftables;
}

export class PolicyEngine {
  private readonly members: Members;
  private structure?: PolicyStructure;
  private policies?: [unknown, unknown];
  /** The structure hash the kernel has with exactly our elements; "none" when there is no table; undefined when unknown. */
  private applied?: string;
  /** The handle of the table this engine last wrote or adopted (a re-created table gets a new one). */
  private appliedHandle?: bigint | "none";
  private nl?: Nftables;

  constructor(private readonly o: PolicyEngineOptions) {
    this.members = new Members(o.nodeName);
  }

  /** This node's pods that some policy selects, per direction ("ns/name"), as of the last sync. */
  selected(): Record<Direction, string[]> {
    return this.members.selected();
  }

  /** Forgets what the kernel has: the next sync checks it (after a failure outside the engine). */
  reset(): void {
    this.applied = undefined;
  }

  /**
   * Brings the table in line with the state. With `verify` (an agent pass), the engine first
   * checks over netlink that the kernel's table is the one it last wrote (same handle: not
   * deleted or replaced); without (the served ADD's fast path) it trusts its memory.
   */
  sync(state: ClusterState, verify = true): PolicySync {
    const structure = this.compile(state);
    const prev = this.structure;
    const delta = this.members.update(structure, state);
    this.structure = structure;
    if (verify && this.applied !== undefined && this.kernelHandle() !== this.appliedHandle) this.applied = undefined;
    const out: PolicySync = { changes: [], writes: 0, structure, anySelected: this.members.anySelected() };
    try {
      this.write(structure, prev, delta, out);
    } catch (e) {
      this.applied = undefined;
      throw e;
    }
    return out;
  }

  /** The policy table's handle, or "none". */
  private kernelHandle(): bigint | "none" {
    return this.netlink().table(POLICY_FAMILY, POLICY_TABLE)?.handle ?? "none";
  }

  close(): void {
    this.nl?.close();
    this.nl = undefined;
  }

  /** Recompiles the structure only when the policy maps' contents changed. */
  private compile(state: ClusterState): PolicyStructure {
    const np = state.networkPolicies;
    const cnp = state.clusterNetworkPolicies;
    if (this.structure && this.policies && (this.policies[0] === np || sameValues(this.policies[0] as typeof np, np)) && (this.policies[1] === cnp || sameValues(this.policies[1] as typeof cnp, cnp))) {
      this.policies = [np, cnp];
      return this.structure;
    }
    this.policies = [np, cnp];
    const next = compilePolicy({ state, ...(this.o.logAccepts ? { logAccepts: true } : {}) });
    // Same text, same structure object: members need not redo anything.
    return this.structure && this.structure.hash === next.hash ? this.structure : next;
  }

  private write(s: PolicyStructure, prev: PolicyStructure | undefined, delta: ElementDelta, out: PolicySync): void {
    if (!s.any) {
      if (this.applied === "none") return;
      if (this.kernelHandle() !== "none") {
        this.o.nft.apply(`delete table ${T}\n`, "delete the policy table");
        out.writes++;
        out.changes.push(`delete table ${T} (no policy)`);
      }
      this.applied = "none";
      this.appliedHandle = "none";
      return;
    }
    // No table (the last state had no policy): the whole table, as on a first write.
    if (this.applied === undefined || this.applied === "none") {
      const present = this.kernelHandle() !== "none";
      const marker = present ? installedHash(this.o.nft.listChain(POLICY_FAMILY, POLICY_TABLE, MARKER_CHAIN).map((r) => ({ ...r, family: POLICY_FAMILY, table: POLICY_TABLE }))) : undefined;
      if (marker === s.hash) {
        // The kernel has this structure (an agent restart): correct its elements only.
        const n = this.adopt(s);
        if (n) {
          out.writes++;
          out.changes.push(`correct ${n} element(s) of table ${T}`);
        }
      } else {
        this.o.nft.apply(tableScript(s, this.members.elements), "apply policy ruleset");
        out.writes++;
        out.changes.push(`${present ? "replace" : "create"} table ${T} (${s.rules} rules, ${s.sets.size} sets)`);
      }
      this.applied = s.hash;
      this.appliedHandle = this.kernelHandle();
      return;
    }
    if (this.applied !== s.hash) {
      // prev is what the kernel has: applied === prev.hash whenever applied is a hash.
      const d = deltaScript(prev!, s, this.members.elements, delta);
      this.o.nft.apply(d.script, "update policy ruleset");
      out.writes++;
      out.changes.push(...d.changes);
      this.applied = s.hash;
      return;
    }
    const changes = toNetlink(s, delta);
    if (!changes.length) return;
    this.netlink().apply(changes);
    out.writes++;
    const n = changes.reduce((k, c) => k + c.elements.length, 0);
    out.changes.push(`${n} element change(s) in table ${T}`);
  }

  /** Reads every set's elements from the kernel and writes the difference. Returns how many elements changed. */
  private adopt(s: PolicyStructure): number {
    const nl = this.netlink();
    const delta: ElementDelta = new Map();
    for (const [name, def] of s.sets) {
      const t = setType(def);
      const have = new Set(nl.setElements({ family: POLICY_FAMILY, table: POLICY_TABLE, set: name }).map((e) => formatElement(t.key, e)));
      const want = new Set(this.members.elements.get(name)?.keys());
      const add = new Set([...want].filter((e) => !have.has(e)));
      const del = new Set([...have].filter((e) => !want.has(e)));
      if (add.size || del.size) delta.set(name, { add, del });
    }
    const changes = toNetlink(s, delta);
    if (changes.length) nl.apply(changes);
    return changes.reduce((k, c) => k + c.elements.length, 0);
  }

  private netlink(): Nftables {
    this.nl ??= this.o.netlink ? this.o.netlink() : Nftables.open();
    return this.nl;
  }
}

function sameValues<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w !== v && JSON.stringify(w) !== JSON.stringify(v)) return false;
  }
  return true;
}

/** An element as members.ts writes it, from the kernel's bytes. */
function formatElement(types: readonly NftKeyType[], e: SetElement): string {
  const key = decodeKey(types, e.key).join(" . ");
  return e.verdict ? `${key} : ${e.verdict.code} ${e.verdict.chain}` : key;
}

function parseElement(types: readonly NftKeyType[], e: string, withData: boolean): SetElement {
  const [key, verdict] = e.split(" : ");
  const el: SetElement = { key: encodeKey(types, key!.split(" . ")) };
  if (withData && verdict) {
    const [code, chain] = verdict.split(" ");
    el.verdict = { code: code as "jump" | "goto", chain: chain! };
  }
  return el;
}

/** Element changes as one netlink transaction: deletions (by key) before additions. */
function toNetlink(s: PolicyStructure, delta: ElementDelta): SetElemChange[] {
  const dels: SetElemChange[] = [];
  const adds: SetElemChange[] = [];
  for (const [name, d] of delta) {
    const def = s.sets.get(name);
    if (!def) continue;
    const t = setType(def);
    const ref = { family: POLICY_FAMILY, table: POLICY_TABLE, set: name } as const;
    if (d.del.size) dels.push({ ...ref, op: "del", elements: [...d.del].map((e) => parseElement(t.key, e, false)) });
    if (d.add.size) adds.push({ ...ref, op: "add", elements: [...d.add].map((e) => parseElement(t.key, e, t.verdict)) });
  }
  return [...dels, ...adds];
}
