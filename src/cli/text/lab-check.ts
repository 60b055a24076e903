// The text of `mncni lab check`: the reachability matrix with its summary and failures, or
// (--policy-ports) one truth table per port and protocol (the data: src/lab/check.ts,
// src/lab/policy-check.ts).
import type { CheckKind, CheckReport } from "../../lab/check.ts";
import type { PolicyReport } from "../../lab/policy-check.ts";
import { POLICY_PORTS } from "../../lab/policy-ports.ts";
import { ECHO_PORT } from "../../lab/topology.ts";
import { SERVICE_CHECK_KINDS } from "../../lab/service-check.ts";

/** A matrix (rows: sources, columns: targets) when it fits, then the summary and the failures. */
export function formatLabCheck(rep: CheckReport): string {
  const isSvc = (k: CheckKind) => (SERVICE_CHECK_KINDS as readonly string[]).includes(k);
  const plain = rep.results.filter((r) => !isSvc(r.kind));
  const rows = [...new Set(plain.map((r) => r.from))];
  const cols = [...new Set(plain.map((r) => r.to))];
  const lines: string[] = [];
  if (cols.length <= 24) {
    const w = Math.max(...rows.map((r) => r.length), 4);
    const cw = Math.max(...cols.map((c) => c.length)) + 1;
    lines.push(`${"from \\ to".padEnd(w)} ${cols.map((c) => c.padStart(cw)).join("")}`);
    for (const row of rows) {
      const cells = cols.map((c) => {
        // One mark per cell: a dual-stack pair is ✓ only when both families pass.
        const rs = plain.filter((x) => x.from === row && x.to === c);
        const mark = rs.length === 0 ? "·" : rs.every((r) => r.ok && r.deniedBy) ? "x" : rs.every((r) => r.ok) ? "✓" : rs.every((r) => r.reachable || r.deniedBy) ? (rs.some((r) => r.deniedBy && r.reachable) ? "!" : "NAT") : "✗";
        return mark.padStart(cw);
      });
      lines.push(`${row.padEnd(w)} ${cells.join("")}`);
    }
    lines.push("", `legend: ✓ reached, seen from the expected source address | NAT reached, but seen from another source address | ✗ unreachable | · not checked${rep.policies ? " | x denied by a policy, as expected | ! reached, but a policy denies it" : ""}`);
  }
  const byKind = (k: CheckKind) => {
    const rs = rep.results.filter((r) => r.kind === k);
    return `${k}: ${rs.filter((r) => r.ok).length}/${rs.length}`;
  };
  const svc = rep.results.filter((r) => isSvc(r.kind));
  if (svc.length) {
    // One line per Service probe: where from, which address, which backend answered, seen as what.
    const w = Math.max(...svc.map((r) => `${r.kind} ${r.from} -> ${r.to} ${r.target}`.length));
    lines.push("", "Services:");
    for (const r of svc) {
      const what = `${r.kind} ${r.from} -> ${r.to} ${r.target}`.padEnd(w);
      lines.push(`  ${r.ok ? "✓" : "✗"} ${what}  ${r.reachable ? `by ${r.by ?? "?"}, seen as ${r.seen ?? "?"}` : `no answer (${r.failure ?? r.error ?? "?"})${r.ok ? ", as expected" : ""}`}`);
    }
    lines.push("");
  }
  const kinds = ["pod-pod", "node-pod", "pod-ext", "pod-mtu", ...SERVICE_CHECK_KINDS.filter((k) => svc.some((r) => r.kind === k))] as const;
  lines.push(`${rep.ok ? "PASS" : "FAIL"}: ${rep.passed}/${rep.passed + rep.failed} checks in ${rep.ms} ms${rep.retried ? `, ${rep.retried} passed on retry` : ""} (${kinds.map(byKind).join(", ")})`);
  lines.push("  pod-pod: source address kept (no NAT); pod-ext: seen as the node's address (masquerade); pod-mtu: a full pod-MTU DF ping passes, one byte more is refused");
  if (svc.length) lines.push("  svc-*: through the Services, answered by one of the endpoints it may use; cluster IP: client address kept; external: masqueraded, or kept with externalTrafficPolicy Local; hairpin: a backend reaches itself; affinity: one client, one backend");
  if (rep.servicesSkipped) lines.push(`  ${rep.servicesSkipped}`);
  if (rep.policies) {
    const denied = rep.results.filter((r) => r.deniedBy).length;
    lines.push(`  ${rep.policies.count} ${rep.policies.count === 1 ? "policy" : "policies"} in force: ${denied} probe(s) expected denied (the policy evaluator, TCP port ${ECHO_PORT}; a pod's own node and the pod itself always reach it)${rep.policies.mtuSkipped ? `; ${rep.policies.mtuSkipped} MTU pair(s) not checked (a policy selects an end)` : ""}`);
  }
  for (const p of rep.problems) lines.push(`  ✗ ${p}`);
  for (const r of rep.results.filter((x) => !x.ok).slice(0, 30)) lines.push(`  ✗ ${r.from} -> ${r.to} (${r.target}): ${r.error}`);
  return lines.join("\n");
}

export function formatLabPolicyCheck(r: PolicyReport): string {
  const out: string[] = [];
  const idx = r.pods.map((_, i) => String(i + 1));
  out.push("pods: " + r.pods.map((p, i) => `${i + 1}=${p}`).join("  "));
  out.push("cells: . allowed as expected, x denied as expected, A allowed but expected denied, D denied but expected allowed, ? not probed");
  for (const port of POLICY_PORTS) for (const protocol of r.protocols) {
    const at = new Map(r.cells.filter((c) => c.port === port && c.protocol === protocol).map((c) => [`${c.src}>${c.dst}`, c]));
    out.push("", `${port}/${protocol}`, "    " + idx.map((i) => i.padStart(3)).join(""));
    r.pods.forEach((src, i) => {
      const row = r.pods.map((dst) => {
        const c = at.get(`${src}>${dst}`);
        if (!c) return "-";
        if (c.observed === "unavailable") return "?";
        if (c.observed === c.expected) return c.expected === "allowed" ? "." : "x";
        return c.observed === "allowed" ? "A" : "D";
      });
      out.push(String(i + 1).padStart(3) + " " + row.map((ch) => ch.padStart(3)).join(""));
    });
  }
  out.push("");
  for (const n of r.notes) out.push(`note: ${n}`);
  for (const i of r.invalid) out.push(`not in force (invalid): ${i}`);
  for (const m of r.mismatches) {
    out.push(`MISMATCH ${m.src} -> ${m.dst} ${m.port}/${m.protocol}: expected ${m.expected}${m.by ? ` by ${m.by}` : ""}, observed ${m.observed}`);
  }
  const judged = r.cells.filter((c) => c.observed !== "unavailable").length;
  out.push(r.ok ? `policy check: all ${judged} probes as the policies say` : `policy check: ${r.mismatches.length} of ${judged} probes differ from what the policies say`);
  return out.join("\n");
}
