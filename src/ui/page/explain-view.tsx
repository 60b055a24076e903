// explain's typed result on the page: the hops one by one (route, device, where next, what
// stopped it), the outcome, the policy the evaluator expects and why, and what the traced
// probe met.
import type { Explanation } from "../model.ts";
import { WhyView } from "./why-view.tsx";

type Hop = Explanation["hops"][number];

function hopDetail(h: Hop): string[] {
  const d: string[] = [];
  if (h.iif) d.push(`in ${h.iif}`);
  if (h.source) d.push(`from ${h.source}`);
  if (h.route) d.push(`route ${h.route.type}${h.route.dev ? ` dev ${h.route.dev}` : ""}${h.route.gw ? ` via ${h.route.gw}` : ""}${h.route.table !== 254 ? ` table ${h.route.table}` : ""}`);
  if (h.bridged) d.push(`bridged by ${h.bridged}`);
  if (h.tunnel) d.push(`tunnel to ${h.tunnel.vtep}${h.tunnel.vni !== undefined ? ` vni ${h.tunnel.vni}` : ""} (${h.tunnel.dev})`);
  if (h.neighbour) d.push(`neighbour ${h.neighbour.ip} ${h.neighbour.state}`);
  if (h.masquerade) d.push(`masquerade to ${h.masquerade.to}`);
  if (h.held) d.push(`held (policy not yet programmed for ${h.held.pod ?? h.held.ip})`);
  if (h.next) d.push(`→ ${h.next}${h.via ? ` (${h.via})` : ""}`);
  return d;
}

export function Hops({ hops }: { hops: Hop[] }) {
  return (
    <ol class="hops">
      {hops.map((h) => (
        <li class={h.dropped || h.error ? "drop" : h.delivered ? "ok" : ""}>
          <span class="place">{h.place}</span> <span class="muted">{h.kind}</span>
          <div class="detail">{hopDetail(h).join(" · ")}</div>
          {h.policy && !h.dropped && <div class="detail">policy: {h.policy}</div>}
          {h.dropped && <div class="why">dropped: {h.dropped}</div>}
          {h.error && <div class="why">{h.error}</div>}
          {h.delivered && <div class="detail">delivered</div>}
        </li>
      ))}
    </ol>
  );
}

export function ExplainView({ ex, onProbe, probing }: { ex: Explanation; onProbe?: () => void; probing: boolean }) {
  const expected = ex.policy?.expected;
  const traced = ex.policy?.traced;
  // The deciding direction first (the one that denied, else ingress), then the other.
  const dirs = expected?.why ? (expected.deniedIn === "egress" ? (["egress", "ingress"] as const) : (["ingress", "egress"] as const)) : [];
  return (
    <div class="explain">
      <div class="muted">{ex.proto} {ex.src} → {ex.dst}{ex.proto !== "icmp" ? `:${ex.port}` : ""}</div>
      <div class={`outcome ${ex.outcome}`} data-outcome={ex.outcome}>{ex.outcome}</div>
      {expected && (
        <section>
          <h3>Policy</h3>
          <dl class="kv">
            <dt>expected</dt><dd>{expected.allowed ? "allowed" : `denied${expected.deniedIn ? ` in ${expected.deniedIn}` : ""}`}</dd>
            {expected.by && <><dt>decided by</dt><dd data-testid="decider">{expected.by}</dd></>}
            {expected.egressBy && expected.egressBy !== expected.by && <><dt>egress</dt><dd>{expected.egressBy}{expected.egressNode ? ` (on ${expected.egressNode})` : ""}</dd></>}
            {expected.ingressBy && expected.ingressBy !== expected.by && <><dt>ingress</dt><dd>{expected.ingressBy}{expected.ingressNode ? ` (on ${expected.ingressNode})` : ""}</dd></>}
          </dl>
          {expected.why && <div class="why-block" data-testid="why"><h4>Why</h4>{dirs.map((d) => <WhyView dir={d} d={expected.why![d]} />)}</div>}
        </section>
      )}
      <h3>Path</h3>
      <Hops hops={ex.hops} />
      {traced && <p>probe met: <b>{traced.verdict}</b> by {traced.by}</p>}
      {ex.probe && (
        <section>
          <h3>Traced probe</h3>
          <div class={`outcome ${ex.probe.mismatches.length ? "dropped" : "delivered"}`}>{ex.probe.notSent ? `not sent: ${ex.probe.notSent}` : ex.probe.outcome}</div>
          {ex.probe.mismatches.map((m) => <div class="why">{m}</div>)}
          <ul>{ex.probe.places.map((p) => <li>{p.place}: {p.verdict}{p.droppedBy ? ` by ${p.droppedBy}` : ""}</li>)}</ul>
        </section>
      )}
      {ex.reply && (
        <section>
          <h3>Reply ({ex.reply.src} → {ex.reply.dst}): {ex.reply.outcome}</h3>
          <Hops hops={ex.reply.hops} />
        </section>
      )}
      {onProbe && <p><button class="act" data-testid="probe" disabled={probing} onClick={onProbe}>{probing ? "probing…" : "Run the traced probe"}</button></p>}
    </div>
  );
}
