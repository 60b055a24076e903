// Why a policy verdict is what it is, in words (the data: the evaluator's DirectionWhy,
// src/cluster/evaluate-policy.ts): the deciding thing first, then every rule of the policies
// that selected the pod and why each did or did not match.
import { describeDecider, policyName, selectorText, type Decider, type Direction, type DirectionWhy, type ExplainedDirection, type PeerMiss, type PolicyCheck, type RuleCheck } from "../../cluster/index.ts";

/** The other end as the judged pod sees it: ingress judges the source, egress the destination. */
const otherEnd = (dir: Direction) => (dir === "ingress" ? "source" : "destination");

const labelsText = (l: Record<string, string>) => `{${Object.entries(l).map(([k, v]) => `${k}=${v}`).join(", ")}}`;

/** What the labels have of the unmet requirements' keys: "role=db", "no tier". */
const hasText = (unmet: { key: string; value?: string }[]) => unmet.map((u) => (u.value === undefined ? `no ${u.key}` : `${u.key}=${u.value}`)).join(", ");

/** Why one peer did not cover the other end, as one clause. */
export function peerMissText(m: PeerMiss, dir: Direction): string {
  const who = otherEnd(dir);
  switch (m.kind) {
    case "podSelector":
      return `podSelector ${selectorText(m.selector)} does not select the ${who} ${m.pod} (it has ${hasText(m.unmet)}; labels ${labelsText(m.labels)})`;
    case "namespaceSelector":
      return `namespaceSelector ${selectorText(m.selector)} does not select the ${who}'s namespace ${m.namespace} (it has ${hasText(m.unmet)}; labels ${labelsText(m.labels)})`;
    case "namespace":
      return `no namespaceSelector, so pods of namespace ${m.policyNamespace} only; the ${who} ${m.pod} is in ${m.namespace}`;
    case "notPod":
      return m.hostNetwork ? `selects pods; the ${who} ${m.hostNetwork} is a host-network pod (seen as its node)` : `selects pods; the ${who} ${m.ip ?? "?"} is no pod`;
    case "cidr":
      return m.except ? `${m.field} ${m.cidrs.join(", ")} holds the ${who} ${m.ip} but its except ${m.except} takes it out` : `${m.field} ${m.cidrs.join(", ")} does not hold the ${who} ${m.ip ?? "(no address)"}`;
    case "unsupported":
      return `${m.field} is not enforced by mncni: matches nothing`;
  }
}

/** One rule as checked: "ingress[0] (\"no-a\", Deny): matches", or a line per peer that did not match. */
function ruleLines(r: RuleCheck, dir: Direction): string[] {
  const tags = [r.rule !== r.at ? `"${r.rule}"` : "", r.action ?? ""].filter((t) => t !== "");
  const line = (where: string, what: string) => `${where}${tags.length ? ` (${tags.join(", ")})` : ""}: ${what}`;
  if (r.failClosed) return [line(r.at, `names ${r.failClosed}, which mncni does not enforce: a Deny or Pass rule with it denies everything (fail closed)`)];
  if (r.matched) return [line(r.at, "matches")];
  if (r.ports) return [line(`${r.at}.ports`, `its peers match, its ports do not: the flow is ${r.ports.protocol}/${r.ports.port}, the rule allows ${r.ports.rule.join(", ")}`)];
  const peers = r.peers ?? [];
  if (!peers.length) return [line(r.at, "no peer, matches nothing")];
  return peers.map((p) => line(`${r.at}.${p.at}`, peerMissText(p.miss, dir)));
}

const policyHead = (p: PolicyCheck) => `${p.kind} ${policyName(p)}${p.tier !== "NetworkPolicy" ? ` (tier ${p.tier}, priority ${p.priority})` : ""}`;

/** The headline of a direction: what decided it, in one sentence. */
function headline(dir: Direction, why: DirectionWhy, allowed: boolean, by: Decider | undefined): string {
  const subject = why.subject ?? `the ${dir === "ingress" ? "destination" : "source"}`;
  switch (why.decided) {
    case "not-judged":
      return `${dir}: not judged (the ${dir === "ingress" ? "destination" : "source"} is no pod, or a host-network pod)`;
    case "default":
      return why.policies.length ? `${dir}: allowed: no rule of the policies selecting ${subject} decided it` : `${dir}: allowed: no policy selects ${subject} for ${dir}`;
    case "isolated": {
      const nps = why.policies.filter((p) => p.kind === "NetworkPolicy");
      const names = nps.map(policyHead).join(", ");
      const rules = nps.reduce((n, p) => n + p.rules.length, 0);
      const poss = nps.length === 1 ? "its" : "their";
      const what = rules === 0 ? `${nps.length === 1 ? "it has" : "they have"} no ${dir} rule` : rules === 1 ? `${poss} one ${dir} rule did not match` : `none of ${poss} ${rules} ${dir} rules matched`;
      return `${dir}: DENIED: no rule allows it. ${names} ${nps.length === 1 ? "selects" : "select"} ${subject} for ${dir} (isolating it); ${what}`;
    }
    default:
      return `${dir}: ${allowed ? "allowed" : "DENIED"} by ${by ? describeDecider(by) : "?"}`;
  }
}

/** A direction's headline, then each policy that selected the pod and its rules as checked. */
export function directionWhyLines(dir: Direction, d: ExplainedDirection): string[] {
  const why = d.why;
  const out = [headline(dir, why, d.allowed, d.by)];
  for (const p of why.policies) {
    out.push(`  ${policyHead(p)}${p.rules.length ? ":" : ": no rule"}`);
    for (const r of p.rules) out.push(...ruleLines(r, dir).map((l) => `    ${l}`));
  }
  return out;
}
