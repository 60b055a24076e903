// `explain --probe`: a real packet, marked for nftables tracing in every namespace it may
// cross, and the kernel's trace events of it compared with the computed path. The marking
// rules live in a table mncni owns (mncni-trace), removed afterwards whatever happens.
import { TraceListener, type TraceEvent } from "../kernel/index.ts";
import { formatIP } from "../net/ip.ts";
import type { Explanation, Place, TracedPlace } from "./explain.ts";
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

/** The rules that set nftrace on the probe's packets, in the families its hooks see first. */
function traceScript(dst: string, proto: ProbeProto, port: number): string {
  const v6 = dst.includes(":");
  const l4 = proto === "icmp" && v6 ? "ipv6-icmp" : proto;
  const match = `${v6 ? "ip6" : "ip"} daddr ${dst} meta l4proto ${l4}${proto === "icmp" ? "" : ` th dport ${port}`} meta nftrace set 1`;
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
 * tables are mncni's own and removed afterwards, also when sending fails.
 */
export function probePath(places: Place[], ex: Explanation, spoof: boolean): NonNullable<Explanation["probe"]> {
  const byName = new Map(places.map((p) => [p.name, p]));
  const onPath = [...new Set(ex.hops.map((h) => h.place))].map((n) => byName.get(n)!).filter(Boolean);
  // Namespaces next to the path too: a packet that goes where it was not expected shows up there.
  const watched = [...onPath, ...places.filter((p) => p.kind !== "host" && !onPath.includes(p))];
  const script = traceScript(ex.dst, ex.proto, ex.port);
  const installed: Place[] = [];
  const listeners = new Map<string, TraceListener>();
  const traced: TracedPlace[] = [];
  try {
    for (const p of watched) {
      const r = nftIn(p.netns, ["-f", "-"], script);
      if (r.code !== 0) throw new Error(`cannot add table ${TRACE_TABLE} in "${p.name}": ${r.stderr.trim()}`);
      installed.push(p);
      listeners.set(p.name, TraceListener.open(p.netns));
    }
    const close = sendProbe({ netns: onPath[0]?.netns, src: ex.src, spoof, dst: ex.dst, proto: ex.proto, port: ex.port });
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
  const seen = traced.filter((t) => t.verdict !== "not seen").map((t) => t.place);
  const dropAt = traced.find((t) => t.verdict === "dropped");
  const mismatches: string[] = [];
  const computed = ex.hops.map((h) => h.place);
  for (const p of computed) if (!seen.includes(p) && !(ex.outcome === "dropped" && p === computed[computed.length - 1] && dropAt)) mismatches.push(`computed path crosses "${p}", the traced packet was not seen there`);
  for (const p of seen) if (!computed.includes(p)) mismatches.push(`the traced packet was seen in "${p}", which the computed path does not cross`);
  if (dropAt && ex.outcome !== "dropped") mismatches.push(`the traced packet was dropped in "${dropAt.place}" by ${dropAt.droppedBy}; the computed path says ${ex.outcome}`);
  if (!dropAt && ex.outcome === "dropped") mismatches.push(`the computed path drops it in "${computed[computed.length - 1]}"; the traced packet was not dropped`);
  if (dropAt && ex.outcome === "dropped" && dropAt.place !== computed[computed.length - 1]) mismatches.push(`dropped in "${dropAt.place}", computed in "${computed[computed.length - 1]}"`);
  // Masquerade: the source seen after the node that masquerades must be its address.
  ex.hops.forEach((h, i) => {
    if (!h.next || h.next === "outside") return;
    const after = traced.find((t) => t.place === h.next);
    const seenSrc = after?.events.find((e) => e.saddr)?.saddr;
    const want = ex.hops[i + 1]?.source;
    if (seenSrc && want && seenSrc !== want) mismatches.push(`"${h.next}" saw source ${seenSrc}, computed ${want}`);
  });
  const outcome = dropAt ? `dropped in ${dropAt.place} by ${dropAt.droppedBy}` : seen.length ? `reached ${seen[seen.length - 1]}` : "not seen anywhere";
  return { places: traced.filter((t) => t.verdict !== "not seen" || computed.includes(t.place)), outcome, mismatches };
}
