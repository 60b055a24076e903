// `mncni lab check`: TCP between every pod and node, or with --policy-ports the policy truth
// table (the work: src/lab/check.ts, policy-check.ts); rendered as text or --json.
import { sayError, sayJson, sayRendered } from "./output.ts";
import { check } from "../lab/check.ts";
import { POLICY_WAIT_MS } from "../lab/policy-in-force.ts";
import { formatLabPolicyCheck, formatLabCheck } from "./text/lab-check.ts";
import { requireState } from "../lab/state.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { JSON_OUT, NAME, TIMEOUT, parse } from "./lab-common.ts";

const CHECK = {
  name: "mncni lab check",
  summary: "TCP from every pod and node to every pod (no NAT expected) and from every pod to the external host (seen as its node). Exit 1 on any failure.",
  flags: {
    name: NAME, json: JSON_OUT, timeout: TIMEOUT,
    "policy-wait": { type: "int", value: "S", default: POLICY_WAIT_MS / 1000, min: 0, max: 3600, help: "with agents: wait up to S seconds for each node's agent to program the policies the check reads before judging flows by them" },
  },
  notes: "The matrix is printed for up to 24 targets; larger labs get the summary and the failures only.",
} satisfies CommandSpec<FlagTable>;

export async function cmdCheck(argv: string[]): Promise<number> {
  const p0 = parse(CHECK, argv);
  if (typeof p0 === "number") return p0;
  const v = p0.flags;
  const s = requireState(v.name);
  // On stderr, once per node waited for: a check that pauses says why.
  const policyWait = { timeoutMs: v["policy-wait"] * 1000, onWait: (m: string) => sayError(m) };
  if (s.options.policyPorts) {
    const { policyCheck } = await import("../lab/policy-check.ts");
    const rep = await policyCheck(s, { timeoutMs: Math.min(v.timeout, 1500), policyWait });
    if (v.json) sayJson(rep);
    else sayRendered(rep, formatLabPolicyCheck);
    // An incomplete lab proves nothing: it fails, as in the reachability check.
    if (s.complete === false) sayError(`FAIL: lab "${v.name}" is INCOMPLETE (its \`up\` was interrupted or is still running)`);
    return rep.ok && s.complete !== false ? 0 : 1;
  }
  const rep = await check(s, { timeoutMs: v.timeout, policyWait });
  if (v.json) sayJson(rep);
  else sayRendered(rep, formatLabCheck);
  return rep.ok ? 0 : 1;
}
