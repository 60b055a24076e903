// The policy engine: keeps table `inet mncni-policy` equal to what the policies and pods ask
// for, through the owned-table engine (src/firewall/table-engine.ts: elements over netlink,
// structure as a minimal `nft -f` delta, adoption verified by fingerprint). This side
// compiles the policies, keeps set membership, and owns what the table engine cannot know:
// which policy produced an object the kernel refused. Such a policy is left out (the rest is
// programmed) and reported until it changes, or for RETRY_MS, after which it is tried again.
import type { ClusterState, Direction } from "../../cluster/types.ts";
import { POLICY } from "../../firewall/names.ts";
import { type Rejected, StructureRejected, type TableStructure, TableEngine, type SetSpec } from "../../firewall/table-engine.ts";
import { Nftables } from "../../kernel/index.ts";
import type { Nft } from "../nft-ruleset.ts";
import { compilePolicy, type PolicyStructure, describeSet, setType } from "./compile.ts";
import { Members } from "./members.ts";

export interface PolicySync {
  changes: string[];
  /** Kernel writes made (0 when nothing changed). */
  writes: number;
  structure: PolicyStructure;
  /** Whether some policy selects a pod of this node. */
  anySelected: boolean;
  /** What is not programmed because the kernel refused it, one sentence each (until it changes). */
  rejected: string[];
}

export interface PolicyEngineOptions {
  nodeName: string;
  logAccepts?: boolean;
  /** Runs `nft` scripts. */
  nft: Pick<Nft, "apply">;
  /** The netlink side; opened on first use in the agent's namespace. */
  netlink?: () => Nftables;
}

/** How many structural retries one sync may make, each leaving out the policies at fault. */
const MAX_REJECTED_PER_SYNC = 8;
/** A policy left out is tried again after this long (the cause may have been the kernel's state). */
const RETRY_MS = 60_000;

type PolicyKey = `${"NetworkPolicy" | "ClusterNetworkPolicy"} ${string}`;

export class PolicyEngine {
  private readonly members: Members;
  private readonly table: TableEngine;
  private structure?: PolicyStructure;
  private policies?: [unknown, unknown];
  /** Policies left out, with the object (spec) that was refused and why: kept out until the object changes. */
  private excluded = new Map<PolicyKey, { object: unknown; why: string; until: number }>();

  constructor(private readonly o: PolicyEngineOptions) {
    this.members = new Members(o.nodeName);
    this.table = new TableEngine({
      ...POLICY_TARGET,
      apply: (script, what) => o.nft.apply(script, what),
      netlink: o.netlink ?? (() => Nftables.open()),
    });
  }

  /** This node's pods that some policy selects, per direction ("ns/name"), as of the last sync. */
  selected(): Record<Direction, string[]> {
    return this.members.selected();
  }

  /** Forgets what the kernel has: the next sync checks it (after a failure outside the engine). */
  reset(): void {
    this.table.reset();
  }

  close(): void {
    this.table.close();
  }

  /**
   * Brings the table in line with the state. With `verify` (an agent pass), the engine first
   * checks over netlink that the kernel's table is the one it last wrote (same handle: not
   * deleted or replaced); without (the served ADD's fast path) it trusts its memory.
   */
  sync(state: ClusterState, verify = true): PolicySync {
    const rejected: string[] = [];
    for (let attempt = 0; ; attempt++) {
      const effective = this.withoutExcluded(state);
      const structure = this.compile(effective);
      const delta = this.members.update(structure, effective);
      this.structure = structure;
      try {
        const r = this.table.sync(structure.any ? policyTable(structure) : undefined, this.members.elements, delta, verify);
        rejected.push(...r.rejected.map(describeRejected));
        // Policies the compiler refused as too large (compiled fail closed instead).
        rejected.push(...structure.refused);
        for (const [k, x] of this.excluded) rejected.push(`${k} is not programmed: ${x.why}`);
        return { changes: r.changes, writes: r.writes, structure, anySelected: this.members.anySelected(), rejected };
      } catch (e) {
        if (!(e instanceof StructureRejected) || attempt >= MAX_REJECTED_PER_SYNC) throw e;
        const owners = this.owners(effective, e.rejected);
        if (!owners.length) throw e;
        const until = Date.now() + RETRY_MS;
        for (const [k, object] of owners) this.excluded.set(k, { object, why: e.rejected.map(describeRejected).join("; "), until });
        // Members were updated for a structure the kernel does not have: the table engine
        // rewrites from scratch (it forgot what it applied when the write failed).
      }
    }
  }

  /** The state without the policies left out (a changed policy is tried again). */
  private withoutExcluded(state: ClusterState): ClusterState {
    if (!this.excluded.size) return state;
    const np = new Map(state.networkPolicies);
    const cnp = new Map(state.clusterNetworkPolicies);
    for (const [key, x] of this.excluded) {
      const [kind, id] = splitKey(key);
      const m: Map<string, unknown> = kind === "NetworkPolicy" ? np : cnp;
      const now = m.get(id);
      if (now === undefined || x.until <= Date.now() || (now !== x.object && JSON.stringify(now) !== JSON.stringify(x.object))) this.excluded.delete(key);
      else m.delete(id);
    }
    return this.excluded.size ? { ...state, networkPolicies: np as ClusterState["networkPolicies"], clusterNetworkPolicies: cnp as ClusterState["clusterNetworkPolicies"] } : state;
  }

  /** The policies whose compiled objects include what was refused (a rule, a chain of their own, a set). */
  private owners(state: ClusterState, rejected: Rejected[]): [PolicyKey, unknown][] {
    const base = compilePolicy({ state: { networkPolicies: new Map(), clusterNetworkPolicies: new Map() }, ...(this.o.logAccepts ? { logAccepts: true } : {}) });
    const out: [PolicyKey, unknown][] = [];
    const consider = (key: PolicyKey, s: PolicyStructure, object: unknown) => {
      const owns = rejected.some((r) => r.kind === "set" ? s.sets.has(r.name) && !base.sets.has(r.name)
        : r.rule !== undefined ? (s.chains.get(r.name)?.rules.includes(r.rule) ?? false) && !(base.chains.get(r.name)?.rules.includes(r.rule) ?? false)
        : s.chains.has(r.name) && !base.chains.has(r.name));
      if (owns) out.push([key, object]);
    };
    const alone = (np: Map<string, unknown>, cnp: Map<string, unknown>) =>
      compilePolicy({ state: { networkPolicies: np as ClusterState["networkPolicies"], clusterNetworkPolicies: cnp as ClusterState["clusterNetworkPolicies"] }, ...(this.o.logAccepts ? { logAccepts: true } : {}) });
    for (const [id, p] of state.networkPolicies) consider(`NetworkPolicy ${id}`, alone(new Map([[id, p]]), new Map()), p);
    for (const [id, p] of state.clusterNetworkPolicies) consider(`ClusterNetworkPolicy ${id}`, alone(new Map(), new Map([[id, p]])), p);
    return out;
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
}

const tables = new WeakMap<PolicyStructure, TableStructure>();

/** The compiled structure as the table engine takes it. */
export function policyTable(s: PolicyStructure): TableStructure {
  let t = tables.get(s);
  if (!t) {
    const sets = new Map<string, SetSpec>();
    for (const [name, def] of s.sets) {
      const st = setType(def);
      sets.set(name, { key: st.key, verdict: st.verdict, comment: describeSet(def) });
    }
    tables.set(s, (t = { hash: s.hash, sets, chains: s.chains }));
  }
  return t;
}

/** Where the policy table's scripts write (for tests of the scripts). */
export const POLICY_TARGET = { table: POLICY, markerChain: POLICY.markerChain, markerPrefix: POLICY.markerPrefix, stateSet: POLICY.stateSet } as const;

const splitKey = (k: PolicyKey): ["NetworkPolicy" | "ClusterNetworkPolicy", string] => {
  const i = k.indexOf(" ");
  return [k.slice(0, i) as "NetworkPolicy" | "ClusterNetworkPolicy", k.slice(i + 1)];
};

function describeRejected(r: Rejected): string {
  const what = r.kind === "element" ? `element "${r.element}" of set ${r.name}` : r.kind === "set" ? `set ${r.name}` : r.rule !== undefined ? `rule "${r.rule}" of chain ${r.name}` : `chain ${r.name}`;
  return `${what} refused by the kernel: ${r.reason}`;
}

function sameValues<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w !== v && JSON.stringify(w) !== JSON.stringify(v)) return false;
  }
  return true;
}
