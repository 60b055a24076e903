// What an agent programmed in a node namespace, as nft lists it, against what a fresh compile
// of the cluster state says: the policy suites wait on it before traffic decides.
import { compilePolicy } from "../../src/agent/policy/index.ts";
import { Members } from "../../src/agent/policy/members.ts";
import type { ClusterState } from "../../src/cluster/types.ts";
import { POLICY } from "../../src/firewall/names.ts";
import { inNetns } from "../helpers/netns.ts";
import { waitFor } from "./lab.ts";

/** The policy table's marker hash ("absent": no table) and its sets' elements, in the compiler's notation. */
export function policyTable(ns: string): { hash: string; sets: Record<string, string[]> } {
  const r = inNetns(ns, ["nft", "-j", "list", "table", "inet", "mncni-policy"], { allowFail: true });
  if (r.code !== 0) return { hash: "absent", sets: {} };
  const items = JSON.parse(r.stdout).nftables as any[];
  const rule = items.find((o) => o.rule?.comment?.startsWith("mncni-policy ruleset "));
  const text = (v: any): string => (typeof v === "object" && v?.concat ? v.concat.map(String).join(" . ") : String(v));
  const sets: Record<string, string[]> = {};
  for (const o of items) {
    const s = o.set ?? o.map;
    // The table engine's own bookkeeping (the fingerprint) is no policy set.
    if (!s || s.name === POLICY.stateSet) continue;
    sets[s.name] = (s.elem ?? []).map((e: any) => (Array.isArray(e) ? `${text(e[0])} : goto ${e[1].goto.target}` : text(e))).sort();
  }
  return { hash: rule?.rule.comment.slice("mncni-policy ruleset ".length) ?? "none", sets };
}

/** Waits until the node's agent has programmed the state (marker hash and every set's elements), or removed its table when nothing applies. */
export async function programmed(node: { name: string; ns: string }, state: ClusterState, timeoutMs: number): Promise<void> {
  const want = compilePolicy({ state });
  if (!want.any) return waitFor(`${node.name} to remove the policy table`, () => policyTable(node.ns).hash === "absent", timeoutMs);
  const members = new Members(node.name);
  members.update(want, state);
  const sets = Object.fromEntries([...want.sets.keys()].map((k) => [k, [...(members.elements.get(k)?.keys() ?? [])].sort()]));
  const sorted = (o: Record<string, string[]>) => JSON.stringify(Object.keys(o).sort().map((x) => [x, o[x]]));
  await waitFor(`${node.name} to program the policies`, () => {
    const k = policyTable(node.ns);
    return k.hash === want.hash && sorted(k.sets) === sorted(sets);
  }, timeoutMs);
}
