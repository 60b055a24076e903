// The terminal form of an explanation: the path as a chain of hops, then the probe's account.
import type { Explanation, Hop } from "../../obs/explain.ts";
import { bold, dim, green, red, yellow } from "./render.ts";
import { directionWhyLines } from "./policy-why.ts";

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

/** What the computed path, and with a probe the traced one, came to: the first lines of the output. */
function outcomeLine(ex: Explanation): string {
  const held = ex.hops.find((h) => h.held)?.held;
  return held
    ? yellow(`held (${held.pod ?? held.ip} is not yet programmed by the agent; its next pass releases it)`)
    : ex.outcome === "delivered" ? green(ex.outcome) : ex.outcome === "leaves" ? yellow("leaves the known namespaces") : red(ex.outcome);
}

/** The policy's verdict and why: the denying direction first, each with the rules of the policies that selected the pod. */
function policyLines(ex: Explanation): string[] {
  const e = ex.policy?.expected;
  if (!e) return [];
  const at = e.deniedIn === "egress" ? e.egressNode : e.deniedIn === "ingress" ? e.ingressNode : undefined;
  if (!e.why) return [`policy: ${e.allowed ? green("allowed") : red(`DENIED in ${e.deniedIn}`)}${e.by ? ` by ${e.by}` : " (selected by no policy)"}`];
  const head = `policy: ${e.allowed ? green("allowed") : red(`DENIED in ${e.deniedIn}${at ? ` (judged on ${at})` : ""}`)}`;
  if (!e.why.egress.why.policies.length && !e.why.ingress.why.policies.length && e.allowed) return [`policy: ${green("allowed")} (no policy selects either end)`];
  const dirs = e.deniedIn === "egress" ? (["egress", "ingress"] as const) : (["ingress", "egress"] as const);
  return [head, ...dirs.flatMap((d) => directionWhyLines(d, e.why![d]).map((l) => `  ${l}`))];
}

function mismatchLines(ex: Explanation): string[] {
  if (!ex.probe) return [];
  const mismatches = [...ex.probe.mismatches, ...(ex.reply?.probe?.mismatches ?? []).map((m) => `reply: ${m}`)];
  return [mismatches.length ? red(`MISMATCH between computed and traced path:\n${mismatches.map((m) => `  - ${m}`).join("\n")}`) : green(`computed and traced paths agree${ex.reply?.probe ? " (both ways)" : ""}`)];
}

/** Whether the eBPF fast path carries it past the node's stack (both ways), and why not. */
function fastPathLines(ex: Explanation): string[] {
  const f = ex.fastPath;
  if (!f) return [];
  const a = f.arrival;
  const there = !a ? [] : a.redirected ? [`fast path: ${green("redirected")} on ${a.node} too (from the underlay into the destination pod, both ways: its stack does not see it)`] : [`fast path: takes the stack on ${a.node}`, ...a.why.map((w) => `  - ${w}`)];
  if (f.redirected) return [`fast path: ${green("redirected")} on ${f.node} (${a ? "out of the underlay" : "from the source's device into the destination pod"}, both ways: the node's stack does not see it)`, ...there];
  return [`fast path: takes the stack on ${f.node}`, ...f.why.map((w) => `  - ${w}`), ...there];
}

/**
 * The decisive lines first (what happened, the policy's verdict and why, whether the kernel's
 * trace agrees), then the path hop by hop and the probe's trace.
 */
export function formatExplanation(ex: Explanation): string {
  const oc = outcomeLine(ex);
  const out = [
    `${bold(`${ex.src} -> ${ex.dst}`)} ${ex.proto}${ex.proto === "icmp" ? "" : `/${ex.port}`}: ${oc}${whereItEnds(ex.hops, ex.outcome)}${ex.probe ? `; traced: ${ex.probe.outcome}` : ""}`,
    ...policyLines(ex),
    ...fastPathLines(ex),
    ...mismatchLines(ex),
    "",
    bold("path (computed)"),
  ];
  for (const h of ex.hops) out.push(...hopLine(h));
  out.push("", `computed: ${oc}${whereItEnds(ex.hops, ex.outcome)}`);
  if (ex.reply) {
    const r = ex.reply;
    out.push("", bold(`reply ${r.src} -> ${r.dst} (the SYN-ACK: a connection needs both ways)`));
    for (const h of r.hops) out.push(...hopLine(h));
    out.push(`computed reply: ${r.outcome === "delivered" ? green(r.outcome) : r.outcome === "leaves" ? yellow("leaves the known namespaces") : red(r.outcome)}${whereItEnds(r.hops, r.outcome)}`);
  }
  const pol = ex.policy;
  if (ex.probe) {
    out.push("", bold("probe (nftables trace)"));
    for (const t of ex.probe.places) {
      out.push(`  ${t.place}: ${t.verdict === "dropped" ? red(`dropped by ${t.droppedBy}`) : t.verdict === "accepted" ? green("seen") : red("not seen")}`);
      for (const e of t.events) out.push(`    ${e.table} ${e.chain} ${e.type}${e.verdict ? ` ${e.verdict}` : ""}${e.rule ? `: ${e.rule}` : ""}${e.saddr ? dim(` [${e.saddr} > ${e.daddr}]`) : ""}`);
    }
    out.push(`traced: ${ex.probe.notSent ? red(ex.probe.outcome) : ex.probe.outcome}`);
    if (ex.reply?.probe) out.push(`traced reply: ${ex.reply.probe.outcome}${ex.reply.probe.places.filter((t) => t.verdict !== "not seen").length ? ` (seen in ${ex.reply.probe.places.filter((t) => t.verdict !== "not seen").map((t) => t.place).join(", ")})` : ""}`);
    if (pol?.traced) out.push(`policy (traced): ${pol.traced.verdict === "dropped" ? red("dropped") : green("allowed")} in ${pol.traced.place} by ${pol.traced.by} ${dim(`[rule comment "${pol.traced.rule}"]`)}`);
    out.push(...mismatchLines(ex));
  }
  return out.join("\n");
}
