// The policy step's plan: the compiled table against what the kernel has. Pure. The table is
// replaced in one `nft -f` transaction (create-if-missing, delete, define), so there is no
// moment with a half-applied policy; a kernel that already has this body (the marker's hash)
// gets nothing, so an agent restart rewrites nothing and never flushes the rules in force.
import type { NftRuleset } from "../nft-ruleset.ts";
import { type CompiledPolicy, POLICY_FAMILY, POLICY_MARKER, POLICY_TABLE } from "./compile.ts";

export interface PolicyPlan {
  /** The nft script, empty when the kernel already matches. */
  script: string;
  changes: string[];
}

const T = `${POLICY_FAMILY} ${POLICY_TABLE}`;

function installedHash(current: NftRuleset): string | undefined {
  const m = current.rules.find((r) => r.family === POLICY_FAMILY && r.table === POLICY_TABLE && r.comment?.startsWith(POLICY_MARKER));
  return m?.comment?.slice(POLICY_MARKER.length);
}

export function planPolicy(compiled: CompiledPolicy, current: NftRuleset): PolicyPlan {
  const present = current.tables.some((t) => t.family === POLICY_FAMILY && t.name === POLICY_TABLE);
  const none = compiled.selected.ingress.length === 0 && compiled.selected.egress.length === 0;
  // No pod of this node is selected: no table (pods selected by no policy are untouched).
  if (none) return present ? { script: `delete table ${T}\n`, changes: [`delete table ${T} (no policy selects a pod of this node)`] } : { script: "", changes: [] };
  if (present && installedHash(current) === compiled.hash) return { script: "", changes: [] };
  const body = compiled.body.replace("policy accept;\n", `policy accept;\n    counter comment "${POLICY_MARKER}${compiled.hash}"\n`);
  const script = `table ${T} {}\ndelete table ${T}\ntable ${T} {\n${body}\n}\n`;
  const n = (d: "ingress" | "egress") => compiled.selected[d].length;
  return { script, changes: [`replace table ${T} (${n("ingress")} pod(s) isolated for ingress, ${n("egress")} for egress, ${compiled.rules} rules)`] };
}

