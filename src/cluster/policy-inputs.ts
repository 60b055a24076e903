// A fingerprint of what policy enforcement is computed from: the policies, and the pods and
// namespaces their selectors and named ports resolve against. An agent serves the fingerprint
// of the state its last pass programmed (/readyz JSON, `policy.inputs`); `lab check` computes
// the same from its own read of the source, and so knows when every agent enforces what the
// evaluator will expect, instead of assuming it because the write (`lab apply`) returned.
import { createHash } from "node:crypto";
import type { ClusterState } from "./types.ts";

/** The fingerprint of a state without policies: nothing is enforced, whatever the pods are. */
export const NO_POLICY_INPUTS = "none";

const sortedEntries = (o: Record<string, string>) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** JSON with object keys in order, so two reads of the same objects give the same text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

// Snapshots are immutable and replaced whole: computed once per snapshot, when asked (a pass
// does not pay for it; a /readyz that asks does, once).
const memo = new WeakMap<ClusterState, string>();

/** The fingerprint of the policy-relevant part of `state` (NO_POLICY_INPUTS when it has no policy). */
export function policyInputs(state: ClusterState): string {
  const known = memo.get(state);
  if (known !== undefined) return known;
  let out = NO_POLICY_INPUTS;
  if (state.networkPolicies.size + state.clusterNetworkPolicies.size > 0) {
    const h = createHash("sha256");
    const add = (tag: string, key: string, v: unknown) => h.update(`${tag}\0${key}\0${canonical(v)}\n`);
    const byKey = <T>(m: ReadonlyMap<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [k, p] of byKey(state.networkPolicies)) add("np", k, p.spec);
    for (const [k, p] of byKey(state.clusterNetworkPolicies)) add("cnp", k, p.spec);
    for (const [k, n] of byKey(state.namespaces)) add("ns", k, sortedEntries(n.labels));
    for (const [k, p] of byKey(state.pods)) {
      add("pod", k, { labels: sortedEntries(p.labels), node: p.nodeName, ips: p.podIPs, host: p.hostNetwork, ports: p.namedPorts, phase: p.phase, created: p.created });
    }
    out = h.digest("hex").slice(0, 16);
  }
  memo.set(state, out);
  return out;
}
