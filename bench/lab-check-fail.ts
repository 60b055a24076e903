// `lab check` when the lab is broken against when it is healthy, old build against new,
// interleaved in one run (which build goes first alternates): a 3x2 lab (nodes x pods per
// node) made by the new build, then for each run a healthy check with each build, then with
// node2/pod1's default route deleted (its replies cannot leave: every other node's probes to
// it time out, its own fail with ENETUNREACH) a failing check with each. Medians of the runs.
//   bun bench/lab-check-fail.ts --old-bin DIR [--runs 5]
// DIR: the old build's dist/ (its mncni runs `lab check` on the same lab).
import "./help.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({ args: Bun.argv.slice(2), options: { "old-bin": { type: "string" }, runs: { type: "string", default: "5" } } });
if (!v["old-bin"]) throw new Error("usage: bun bench/lab-check-fail.ts --old-bin DIR [--runs 5]");
const NEW = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni");
const OLD = resolve(v["old-bin"], "mncni");
for (const b of [NEW, OLD]) if (!existsSync(b)) throw new Error(`${b} missing`);
const NAME = `bchk${process.pid % 10000}`;

const sh = (argv: string[], allowFail = false) => {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0 && !allowFail) throw new Error(`${argv.join(" ")} failed: ${p.stderr.toString().slice(-500)}`);
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString() };
};
/** Seconds one `lab check` takes with this build, and whether it passed. */
const check = (bin: string) => {
  const t = performance.now();
  const r = sh([bin, "lab", "check", "--name", NAME], true);
  return { s: (performance.now() - t) / 1000, ok: r.code === 0 };
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const pod = `${NAME}-node2-pod1`;
sh([NEW, "lab", "up", "--name", NAME, "--nodes", "3", "--pods-per-node", "2", "-q"]);
const times: Record<string, number[]> = { "old healthy": [], "new healthy": [], "old failing": [], "new failing": [] };
try {
  const gw = (JSON.parse(sh(["ip", "-n", pod, "-j", "route", "show", "default"]).stdout) as { gateway: string }[])[0]!.gateway;
  for (let i = 0; i < Number(v.runs); i++) {
    const order = i % 2 ? (["new", "old"] as const) : (["old", "new"] as const);
    for (const b of order) {
      const r = check(b === "new" ? NEW : OLD);
      if (!r.ok) throw new Error(`the healthy lab's check failed with the ${b} build`);
      times[`${b} healthy`]!.push(r.s);
    }
    sh(["ip", "-n", pod, "route", "del", "default"]);
    try {
      for (const b of order) {
        const r = check(b === "new" ? NEW : OLD);
        if (r.ok) throw new Error(`the broken lab's check passed with the ${b} build`);
        times[`${b} failing`]!.push(r.s);
      }
    } finally {
      sh(["ip", "-n", pod, "route", "add", "default", "via", gw, "dev", "eth0"]);
    }
  }
} finally {
  sh([NEW, "lab", "down", "--name", NAME, "-q"], true);
}
const load = sh(["cat", "/proc/loadavg"]).stdout.split(" ").slice(0, 3).join(" ");
console.log(`lab check on a 3x2 lab, ${v.runs} runs interleaved, load ${load}\n`);
console.log("| lab | old (s, median) | new (s, median) | new / old |");
console.log("|---|---|---|---|");
for (const k of ["healthy", "failing"]) {
  const o = median(times[`old ${k}`]!);
  const n = median(times[`new ${k}`]!);
  console.log(`| ${k} | ${o.toFixed(2)} | ${n.toFixed(2)} | ${(n / o).toFixed(2)} |`);
}
