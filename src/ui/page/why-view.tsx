// Why the policy verdict is what it is, as the evaluator accounts for it (its typed
// DirectionWhy per direction, carried in explain's result): the deciding thing first, then each
// policy that selected the judged pod with its rules as checked, and for each rule that did not
// match, which peer missed the other end and why (the labels a selector wanted and found).
// The command line renders the same data as text (src/cli/text/policy-why.ts).
import type { Direction, ExplainedDirection, LabelSelector, PeerMiss, RuleCheck } from "../model.ts";

function selectorText(sel: LabelSelector): string {
  const parts = [
    ...Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(sel.matchExpressions ?? []).map((e) => (e.operator === "In" ? `${e.key} in (${(e.values ?? []).join(",")})` : e.operator === "NotIn" ? `${e.key} notin (${(e.values ?? []).join(",")})` : e.operator === "Exists" ? e.key : `!${e.key}`)),
  ];
  return parts.length ? parts.join(",") : "{}";
}
const labels = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(", ") || "none";
const has = (unmet: { key: string; value?: string }[]) => unmet.map((u) => (u.value === undefined ? `no ${u.key}` : `${u.key}=${u.value}`)).join(", ");

function missText(m: PeerMiss, other: string): string {
  switch (m.kind) {
    case "podSelector":
      return `podSelector ${selectorText(m.selector)} does not select the ${other} ${m.pod}: it has ${has(m.unmet)} (labels ${labels(m.labels)})`;
    case "namespaceSelector":
      return `namespaceSelector ${selectorText(m.selector)} does not select namespace ${m.namespace} of the ${other}: it has ${has(m.unmet)} (labels ${labels(m.labels)})`;
    case "namespace":
      return `no namespaceSelector: pods of ${m.policyNamespace} only, and the ${other} ${m.pod} is in ${m.namespace}`;
    case "notPod":
      return m.hostNetwork ? `selects pods; the ${other} ${m.hostNetwork} is a host-network pod` : `selects pods; the ${other} ${m.ip ?? "?"} is no pod`;
    case "cidr":
      return m.except ? `${m.field} ${m.cidrs.join(", ")} holds the ${other} ${m.ip} but except ${m.except} takes it out` : `${m.field} ${m.cidrs.join(", ")} does not hold the ${other} ${m.ip ?? "(no address)"}`;
    case "unsupported":
      return `${m.field} is not enforced by mncni: matches nothing`;
  }
}

function Rule({ r, other }: { r: RuleCheck; other: string }) {
  const name = `${r.at}${r.rule !== r.at ? ` "${r.rule}"` : ""}${r.action ? ` (${r.action})` : ""}`;
  if (r.failClosed) return <li class="miss">{name}: names {r.failClosed}, not enforced: denies everything (fail closed)</li>;
  if (r.matched) return <li class="match">{name}: matches</li>;
  if (r.ports) return <li class="miss">{name}: its peers match, its ports do not: the flow is {r.ports.protocol}/{r.ports.port}, the rule allows {r.ports.rule.join(", ")}</li>;
  if (!r.peers?.length) return <li class="miss">{name}: no peer, matches nothing</li>;
  return <li class="miss">{name}: does not match<ul>{r.peers.map((p) => <li>{p.at}: {missText(p.miss, other)}</li>)}</ul></li>;
}

const DECIDED: Record<ExplainedDirection["why"]["decided"], string> = {
  admin: "decided by an Admin ClusterNetworkPolicy rule",
  "allowed-by-rule": "allowed by a NetworkPolicy rule",
  isolated: "DENIED: NetworkPolicies select the pod and none of their rules allows it",
  baseline: "decided by a Baseline ClusterNetworkPolicy rule",
  default: "allowed: no rule of any policy decided it",
  "not-judged": "not judged: that end is no pod (or a host-network pod)",
};

export function WhyView({ dir, d }: { dir: Direction; d: ExplainedDirection }) {
  const w = d.why;
  const other = dir === "ingress" ? "source" : "destination";
  const verdict = w.decided === "admin" || w.decided === "baseline" ? `${d.allowed ? "allowed" : "DENIED"}: ${DECIDED[w.decided]}` : DECIDED[w.decided];
  return (
    <div class={`why-dir ${d.allowed ? "" : "denied"}`} data-testid={`why-${dir}`}>
      <b>{dir}</b>{w.subject ? ` of ${w.subject}` : ""}: {verdict}
      {d.by && w.decided !== "isolated" && <div class="muted">by {d.by.kind} {d.by.namespace ? `${d.by.namespace}/` : ""}{d.by.name} rule {d.by.rule}</div>}
      {w.policies.map((p) => (
        <div class="why-policy">
          {p.kind} {p.namespace ? `${p.namespace}/` : ""}{p.name}{p.tier !== "NetworkPolicy" ? ` (tier ${p.tier}, priority ${p.priority})` : ""} selects it{p.rules.length ? "" : ", with no rule"}
          <ul>{p.rules.map((r) => <Rule r={r} other={other} />)}</ul>
        </div>
      ))}
    </div>
  );
}
