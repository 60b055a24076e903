// The terminal form of an explanation: the path as a chain of hops, then the probe's account.
import type { Explanation, Hop } from "../../obs/explain.ts";
import { bold, dim, green, red, yellow } from "./render.ts";

function hopLine(h: Hop): string[] {
  const head = `${bold(h.place)} ${dim(`(${h.kind})`)}${h.iif ? ` in ${h.iif}` : ""}${h.port && h.port !== h.iif ? ` from port ${h.port}` : ""}  src ${h.source}`;
  const lines = [head];
  if (h.held) lines.push(`  ${yellow(h.dropped ?? "held")}`);
  else if (h.dropped) lines.push(`  ${red(`dropped: ${h.dropped}`)}`);
  if (h.policy && !h.dropped) lines.push(`  policy: ${h.policy}`);
  if (h.error) lines.push(`  ${red(h.error)}`);
  if (h.route) {
    const r = h.route;
    lines.push(`  route: ${r.type}${r.gw ? ` via ${r.gw}` : ""}${r.dev ? ` dev ${r.dev}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.table !== 254 ? ` table ${r.table}` : ""}`);
  }
  if (h.neighbour) lines.push(`  neighbour: ${h.neighbour.ip} lladdr ${h.neighbour.mac ?? "-"} ${h.neighbour.state}`);
  if (h.bridged) lines.push(`  bridged on ${h.bridged}`);
  if (h.fdb) lines.push(`  fdb: ${h.fdb.mac} on port ${h.fdb.port}`);
  if (h.tunnel) lines.push(`  tunnel: ${h.tunnel.dev}${h.tunnel.vni !== undefined ? ` vni ${h.tunnel.vni}` : ""}, fdb sends ${h.neighbour?.mac ?? "it"} to VTEP ${h.tunnel.vtep}`);
  if (h.masquerade) lines.push(`  ${yellow(`masquerade to ${h.masquerade.to}`)} (${h.masquerade.rule})`);
  if (h.delivered) lines.push(`  ${green("delivered (local address)")}`);
  if (h.next) lines.push(`  ${h.via === "tunnel" ? "==tunnel==>" : "-->"} ${h.next}`);
  return lines;
}

/** Where a path that did not arrive ends, and why: " in node1/pod1 (no route: ENETUNREACH)". */
function whereItEnds(hops: Hop[], outcome: string): string {
  const last = hops[hops.length - 1];
  if (!last || outcome === "delivered" || outcome === "leaves") return "";
  return ` in ${last.place}${last.error ? ` (${last.error})` : ""}`;
}

export function formatExplanation(ex: Explanation): string {
  const out = [`${bold(`${ex.src} -> ${ex.dst}`)} ${ex.proto}${ex.proto === "icmp" ? "" : `/${ex.port}`}`, ""];
  for (const h of ex.hops) out.push(...hopLine(h));
  const held = ex.hops.find((h) => h.held)?.held;
  const oc = held
    ? yellow(`held (${held.pod ?? held.ip} is not yet programmed by the agent; its next pass releases it)`)
    : ex.outcome === "delivered" ? green(ex.outcome) : ex.outcome === "leaves" ? yellow("leaves the known namespaces") : red(ex.outcome);
  out.push("", `computed: ${oc}${whereItEnds(ex.hops, ex.outcome)}`);
  if (ex.reply) {
    const r = ex.reply;
    out.push("", bold(`reply ${r.src} -> ${r.dst} (the SYN-ACK: a connection needs both ways)`));
    for (const h of r.hops) out.push(...hopLine(h));
    out.push(`computed reply: ${r.outcome === "delivered" ? green(r.outcome) : r.outcome === "leaves" ? yellow("leaves the known namespaces") : red(r.outcome)}${whereItEnds(r.hops, r.outcome)}`);
  }
  const pol = ex.policy;
  if (pol?.expected) out.push(`policy (evaluator): ${pol.expected.allowed ? green("allowed") : red(`denied in ${pol.expected.deniedIn}`)}${pol.expected.by ? ` by ${pol.expected.by}` : " (selected by no policy)"}`);
  if (ex.probe) {
    out.push(bold("probe (nftables trace)"));
    for (const t of ex.probe.places) {
      out.push(`  ${t.place}: ${t.verdict === "dropped" ? red(`dropped by ${t.droppedBy}`) : t.verdict === "accepted" ? green("seen") : red("not seen")}`);
      for (const e of t.events) out.push(`    ${e.table} ${e.chain} ${e.type}${e.verdict ? ` ${e.verdict}` : ""}${e.rule ? `: ${e.rule}` : ""}${e.saddr ? dim(` [${e.saddr} > ${e.daddr}]`) : ""}`);
    }
    out.push(`traced: ${ex.probe.notSent ? red(ex.probe.outcome) : ex.probe.outcome}`);
    if (ex.reply?.probe) out.push(`traced reply: ${ex.reply.probe.outcome}${ex.reply.probe.places.filter((t) => t.verdict !== "not seen").length ? ` (seen in ${ex.reply.probe.places.filter((t) => t.verdict !== "not seen").map((t) => t.place).join(", ")})` : ""}`);
    if (pol?.traced) out.push(`policy (traced): ${pol.traced.verdict === "dropped" ? red("dropped") : green("allowed")} in ${pol.traced.place} by ${pol.traced.by} ${dim(`[rule comment "${pol.traced.rule}"]`)}`);
    const mismatches = [...ex.probe.mismatches, ...(ex.reply?.probe?.mismatches ?? []).map((m) => `reply: ${m}`)];
    out.push(mismatches.length ? red(`MISMATCH between computed and traced path:\n${mismatches.map((m) => `  - ${m}`).join("\n")}`) : green(`computed and traced paths agree${ex.reply?.probe ? " (both ways)" : ""}`));
  }
  return out.join("\n");
}
