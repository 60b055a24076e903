// Commands a benchmark runs (ip, iperf3, `mncni lab`, ...), with what they printed and how
// they ended: a failure throws with the command and its message unless the caller allows it.
// Shared by the lab benchmarks (service-throughput.ts, dataplane-stack.ts); cni-harness.ts
// keeps its own `sh` that returns the output only.

export interface Ran {
  code: number;
  out: string;
  err: string;
}

export function sh(argv: string[], o: { allowFail?: boolean; env?: Record<string, string>; stdin?: string } = {}): Ran {
  const p = Bun.spawnSync(argv, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: o.stdin === undefined ? "ignore" : Buffer.from(o.stdin),
    env: o.env ?? (process.env as Record<string, string>),
  });
  const r = { code: p.exitCode ?? -1, out: p.stdout.toString(), err: p.stderr.toString() };
  if (r.code !== 0 && !o.allowFail) throw new Error(`cannot run "${argv.join(" ")}": exit ${r.code}: ${r.err.trim() || r.out.trim()}`);
  return r;
}

/** `argv` run inside the network namespace `ns`. */
export const inNs = (ns: string, argv: string[]): string[] => ["ip", "netns", "exec", ns, ...argv];
