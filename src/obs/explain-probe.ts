// `explain --probe`: a real packet, marked for nftables tracing in every namespace it may
// cross, and the kernel's trace events of it compared with the computed path. The marking
// rules live in a table mncni owns (mncni-trace), removed afterwards whatever happens.
import { TraceListener, type TraceEvent } from "../kernel/index.ts";
import { formatIP } from "../net/ip.ts";
import type { Explanation, Hop, PathOutcome, Place, ProbeAccount, TracedPlace } from "./explain.ts";
import { POLICY, tableRef } from "../firewall/names.ts";
import { nftIn, ruleComment, ruleText } from "./nft-in.ts";
import { sendProbe, type ProbeProto } from "./probe.ts";

/** Source (which "src") or destination of the traced packet's IPv4 or IPv6 header. */
function hdrAddr(h: Uint8Array | undefined, which: "src" | "dst"): string | undefined {
  if (h && h.length >= 20 && h[0]! >> 4 === 4) return formatIP(h.slice(which === "src" ? 12 : 16, which === "src" ? 16 : 20), 4);
  if (h && h.length >= 40 && h[0]! >> 4 === 6) return formatIP(h.slice(which === "src" ? 8 : 24, which === "src" ? 24 : 40), 6);
  return undefined;
}

const TRACE_TABLE = "mncni-trace";

/** What the trace rules mark: the probe itself, or (TCP) the answer to it. */
interface TraceMatch {
  /** Source and destination of the traced packets; the destination is what the probe was sent to, or (reply) its source. */
  saddr?: string;
  /** Several: a reply to a masqueraded source is given back its first destination on the way. */
  daddr: string | string[];
  proto: ProbeProto;
  dport?: number;
  sport?: number;
}

/** The rules that set nftrace on the probe's packets, in the families its hooks see first. */
function traceScript(m: TraceMatch): string {
  const daddrs = [m.daddr].flat();
  const v6 = daddrs[0]!.includes(":");
  const ip = v6 ? "ip6" : "ip";
  const l4 = m.proto === "icmp" && v6 ? "ipv6-icmp" : m.proto;
  const match = `${m.saddr ? `${ip} saddr ${m.saddr} ` : ""}${ip} daddr ${daddrs.length > 1 ? `{ ${[...new Set(daddrs)].join(", ")} }` : daddrs[0]} meta l4proto ${l4}${m.dport !== undefined ? ` th dport ${m.dport}` : ""}${m.sport !== undefined ? ` th sport ${m.sport}` : ""} meta nftrace set 1`;
  return [
    `table inet ${TRACE_TABLE} {`,
    `  chain pre { type filter hook prerouting priority -450; ${match}; }`,
    `  chain out { type filter hook output priority -450; ${match}; }`,
    `}`,
    `table bridge ${TRACE_TABLE} {`,
    `  chain pre { type filter hook prerouting priority -450; ${match}; }`,
    `}`,
  ].join("\n");
}

/**
 * Sends the probe and reads what the kernel reports of it in each namespace. The trace
 * tables are mncni's own and removed afterwards, also when sending fails. For TCP the probe
 * is sent a second time with the reply (SYN-ACK) traced, compared with the computed reply.
 */
export function probePath(places: Place[], ex: Explanation, spoof: boolean): ProbeAccount {
  const byName = new Map(places.map((p) => [p.name, p]));
  const onPath = [...new Set(ex.hops.map((h) => h.place))].map((n) => byName.get(n)!).filter(Boolean);
  const send = () => sendProbe({ netns: onPath[0]?.netns, src: ex.src, spoof, dst: ex.dst, proto: ex.proto, port: ex.port });
  const match: TraceMatch = { daddr: ex.dst, proto: ex.proto, ...(ex.proto !== "icmp" ? { dport: ex.port } : {}) };
  const run = traceRun(places, onPath, match, send);
  if (ex.reply) {
    const replyOn = [...new Set(ex.reply.hops.map((h) => h.place))].map((n) => byName.get(n)!).filter(Boolean);
    const back = traceRun(places, replyOn, { saddr: ex.reply.src, daddr: [ex.reply.dst, ex.src], proto: ex.proto, sport: ex.port }, send);
    // The reply exists only when the probe went out: a probe not sent is the forward path's finding.
    ex.reply.probe = run.notSent ? { places: [], outcome: "not sent (the probe was not)", mismatches: [] } : compare(ex.reply.hops, ex.reply.outcome, back.traced, back.notSent);
  }
  return compare(ex.hops, ex.outcome, run.traced, run.notSent);
}

/** Installs the trace rules around the path, sends, and reads each namespace's events. */
function traceRun(places: Place[], onPath: Place[], m: TraceMatch, send: () => () => void): { traced: TracedPlace[]; notSent?: string } {
  // Namespaces next to the path too: a packet that goes where it was not expected shows up there.
  const watched = [...onPath, ...places.filter((p) => p.kind !== "host" && !onPath.includes(p))];
  const script = traceScript(m);
  const installed: Place[] = [];
  const listeners = new Map<string, TraceListener>();
  const traced: TracedPlace[] = [];
  let notSent: string | undefined;
  try {
    for (const p of watched) {
      const r = nftIn(p.netns, ["-f", "-"], script);
      if (r.code !== 0) throw new Error(`cannot add table ${TRACE_TABLE} in "${p.name}": ${r.stderr.trim()}`);
      installed.push(p);
      listeners.set(p.name, TraceListener.open(p.netns));
    }
    let close = () => {};
    try {
      close = send();
    } catch (e) {
      // The kernel refused to send it (no route: ENETUNREACH): that is a finding, not a failure of explain.
      notSent = (e as Error).message;
    }
    try {
      const events = new Map<string, TraceEvent[]>();
      for (const [n, l] of listeners) events.set(n, l.read(250));
      for (const p of watched) {
        // Retransmissions are traced too: keep the first packet's events.
        const all = (events.get(p.name) ?? []).filter((e) => e.table !== TRACE_TABLE || e.type === "rule");
        // (Ids differ between the bridge and IP layers of one packet: a repeat of an event ends it.)
        const seenKeys = new Set<string>();
        const firstRepeat = all.findIndex((e) => {
          const k = `${e.family} ${e.table} ${e.chain} ${e.type} ${e.handle}`;
          if (seenKeys.has(k)) return true;
          seenKeys.add(k);
          return false;
        });
        const evs = firstRepeat < 0 ? all : all.slice(0, firstRepeat);
        const drop = evs.find((e) => e.verdict === "drop");
        const tp: TracedPlace = {
          place: p.name,
          // A "continue" with no rule is the kernel noting the packet went on: nothing decided.
          events: evs.filter((e) => e.table !== TRACE_TABLE && !(e.type === "rule" && e.handle === undefined && e.verdict === "continue")).map((e) => ({
            table: `${e.family} ${e.table}`,
            chain: e.chain,
            type: e.type,
            ...(e.verdict ? { verdict: e.verdict } : {}),
            ...(e.handle !== undefined ? { rule: ruleText(p.netns, String(e.family), e.table, e.chain, e.handle) ?? `handle ${e.handle}` } : {}),
            ...(e.handle !== undefined && `${e.family} ${e.table}` === tableRef(POLICY) ? { comment: ruleComment(p.netns, String(e.family), e.table, e.chain, e.handle) } : {}),
            ...(hdrAddr(e.network, "src") ? { saddr: hdrAddr(e.network, "src"), daddr: hdrAddr(e.network, "dst") } : {}),
          })),
          verdict: evs.length === 0 ? "not seen" : drop ? "dropped" : "accepted",
        };
        if (drop) tp.droppedBy = `${drop.family} ${drop.table} ${drop.chain}: ${drop.handle !== undefined ? (ruleText(p.netns, String(drop.family), drop.table, drop.chain, drop.handle) ?? `handle ${drop.handle}`) : "chain policy"}`;
        const first = evs.find((e) => e.network);
        if (first && !tp.events.some((e) => e.saddr)) tp.events.unshift({ table: `${first.family} ${TRACE_TABLE}`, chain: first.chain, type: "seen", saddr: hdrAddr(first.network, "src")!, daddr: hdrAddr(first.network, "dst")! });
        traced.push(tp);
      }
    } finally {
      close();
    }
  } finally {
    for (const l of listeners.values()) l.close();
    for (const p of installed) nftIn(p.netns, ["delete", "table", "inet", TRACE_TABLE]), nftIn(p.netns, ["delete", "table", "bridge", TRACE_TABLE]);
  }
  return { traced, ...(notSent ? { notSent } : {}) };
}

/** Every difference between a computed path and what the trace saw of its packet. */
function compare(hops: Hop[], outcome: PathOutcome, traced: TracedPlace[], notSent: string | undefined): ProbeAccount {
  const computed = hops.map((h) => h.place);
  const keep = traced.filter((t) => t.verdict !== "not seen" || computed.includes(t.place));
  if (notSent !== undefined) {
    // Computed to end where it is sent (no route there): the same finding, nothing to compare.
    const endsAtSource = hops.length === 1 && hops[0]!.error !== undefined;
    const mismatches = endsAtSource ? [] : [`the probe could not be sent (${notSent}); the computed path says ${outcome}`];
    return { places: keep, outcome: `not sent: ${notSent}`, mismatches, notSent };
  }
  const seen = traced.filter((t) => t.verdict !== "not seen").map((t) => t.place);
  const dropAt = traced.find((t) => t.verdict === "dropped");
  const mismatches: string[] = [];
  // A locally sent packet without a route is refused before any hook sees it: its source is not expected to.
  const unsent = (p: string, i: number) => i === 0 && hops.length === 1 && hops[0]!.error !== undefined && p === computed[0];
  computed.forEach((p, i) => {
    if (!seen.includes(p) && !unsent(p, i) && !(outcome === "dropped" && p === computed[computed.length - 1] && dropAt)) mismatches.push(`computed path crosses "${p}", the traced packet was not seen there`);
  });
  for (const p of seen) if (!computed.includes(p)) mismatches.push(`the traced packet was seen in "${p}", which the computed path does not cross`);
  if (dropAt && outcome !== "dropped") mismatches.push(`the traced packet was dropped in "${dropAt.place}" by ${dropAt.droppedBy}; the computed path says ${outcome}`);
  if (!dropAt && outcome === "dropped") mismatches.push(`the computed path drops it in "${computed[computed.length - 1]}"; the traced packet was not dropped`);
  if (dropAt && outcome === "dropped" && dropAt.place !== computed[computed.length - 1]) mismatches.push(`dropped in "${dropAt.place}", computed in "${computed[computed.length - 1]}"`);
  // Masquerade: the source seen after the node that masquerades must be its address.
  hops.forEach((h, i) => {
    if (!h.next || h.next === "outside") return;
    const after = traced.find((t) => t.place === h.next);
    const seenSrc = after?.events.find((e) => e.saddr)?.saddr;
    const want = hops[i + 1]?.source;
    if (seenSrc && want && seenSrc !== want) mismatches.push(`"${h.next}" saw source ${seenSrc}, computed ${want}`);
  });
  const said = dropAt ? `dropped in ${dropAt.place} by ${dropAt.droppedBy}` : seen.length ? `reached ${seen[seen.length - 1]}` : "not seen anywhere";
  return { places: keep, outcome: said, mismatches };
}
