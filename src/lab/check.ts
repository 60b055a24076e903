// `lab check`: the Kubernetes network model, tested with real TCP. Every pod reaches every pod
// without NAT, every node reaches every pod, every pod reaches the external host as its node.
import { ECHO_PORT, EXTERNAL } from "./topology.ts";
import type { ProbeResult } from "./echo.ts";
import { inNetns, pool, runAsync } from "./sh.ts";
import { allPods, type LabState } from "./state.ts";

export type CheckKind = "pod-pod" | "node-pod" | "pod-ext";

export interface CheckResult {
  kind: CheckKind;
  from: string;
  to: string;
  target: string;
  ok: boolean;
  reachable: boolean;
  seen?: string;
  /** The source address the server must see; absent when any address will do. */
  expected?: string;
  error?: string;
  ms: number;
}

export interface CheckReport {
  ok: boolean;
  passed: number;
  failed: number;
  ms: number;
  results: CheckResult[];
}

interface Source {
  label: string;
  netns: string;
  targets: { label: string; ip: string; kind: CheckKind; expected?: string }[];
}

function sources(s: LabState): Source[] {
  const pods = allPods(s);
  const podTargets = pods.flatMap((p) => p.ips.map((ip) => ({ label: `${p.node}/${p.name}`, ip })));
  const ext = { label: "ext", ip: EXTERNAL.host };
  const out: Source[] = [];
  for (const node of s.nodes) {
    for (const pod of node.pods) {
      out.push({
        label: `${node.name}/${pod.name}`,
        netns: pod.ns,
        targets: [
          ...podTargets.map((t) => ({ ...t, kind: "pod-pod" as const, expected: pod.ips[0] })),
          { ...ext, kind: "pod-ext" as const, expected: node.address },
        ],
      });
    }
    out.push({ label: node.name, netns: node.ns, targets: podTargets.map((t) => ({ ...t, kind: "node-pod" as const })) });
  }
  return out;
}

async function probeFrom(s: LabState, src: Source, timeoutMs: number): Promise<CheckResult[]> {
  const targets = src.targets.map((t) => `${t.ip}:${ECHO_PORT}`);
  const r = await runAsync(inNetns(src.netns, [...s.options.selfCmd, "lab", "_probe", "--json", "--timeout", String(timeoutMs), ...targets]), {
    timeoutMs: timeoutMs * 3 + 10_000,
  });
  let answers: ProbeResult[] = [];
  try {
    answers = JSON.parse(r.stdout) as ProbeResult[];
  } catch {
    const error = `probe failed: ${(r.stderr || r.stdout).trim().slice(0, 200) || `exit ${r.code}`}`;
    answers = targets.map((target) => ({ target, ok: false, error, ms: 0 }));
  }
  return src.targets.map((t, i) => {
    const a = answers[i]!;
    const natOk = t.expected === undefined || a.seen === t.expected;
    return {
      kind: t.kind,
      from: src.label,
      to: t.label,
      target: a.target,
      ok: a.ok && natOk,
      reachable: a.ok,
      seen: a.seen,
      expected: t.expected,
      error: a.ok && !natOk ? `seen as ${a.seen}, expected ${t.expected}` : a.error,
      ms: a.ms,
    };
  });
}

export async function check(s: LabState, opts: { timeoutMs?: number } = {}): Promise<CheckReport> {
  const started = performance.now();
  const results = (await pool(sources(s), 4, (src) => probeFrom(s, src, opts.timeoutMs ?? 2000))).flat();
  const failed = results.filter((r) => !r.ok).length;
  return { ok: failed === 0, passed: results.length - failed, failed, ms: Math.round(performance.now() - started), results };
}

/** A matrix (rows: sources, columns: targets) when it fits, then the summary and the failures. */
export function formatReport(rep: CheckReport): string {
  const rows = [...new Set(rep.results.map((r) => r.from))];
  const cols = [...new Set(rep.results.map((r) => r.to))];
  const lines: string[] = [];
  if (cols.length <= 24) {
    const w = Math.max(...rows.map((r) => r.length), 4);
    const cw = Math.max(...cols.map((c) => c.length)) + 1;
    lines.push(`${"from \\ to".padEnd(w)} ${cols.map((c) => c.padStart(cw)).join("")}`);
    for (const row of rows) {
      const cells = cols.map((c) => {
        const r = rep.results.find((x) => x.from === row && x.to === c);
        return (!r ? "·" : r.ok ? "✓" : r.reachable ? "NAT" : "✗").padStart(cw);
      });
      lines.push(`${row.padEnd(w)} ${cells.join("")}`);
    }
    lines.push("", "✓ reachable with the expected source address   NAT wrong source address   ✗ unreachable   · not checked");
  }
  const byKind = (k: CheckKind) => {
    const rs = rep.results.filter((r) => r.kind === k);
    return `${k}: ${rs.filter((r) => r.ok).length}/${rs.length}`;
  };
  lines.push(`${rep.ok ? "PASS" : "FAIL"}: ${rep.passed}/${rep.passed + rep.failed} checks in ${rep.ms} ms (${(["pod-pod", "node-pod", "pod-ext"] as const).map(byKind).join(", ")})`);
  lines.push("  pod-pod: source address kept (no NAT); pod-ext: seen as the node's address (masquerade)");
  for (const r of rep.results.filter((x) => !x.ok).slice(0, 30)) lines.push(`  ✗ ${r.from} -> ${r.to} (${r.target}): ${r.error}`);
  return lines.join("\n");
}
