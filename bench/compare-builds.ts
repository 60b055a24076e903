// Old build against new, interleaved in one run: each benchmark run alternately for the old
// tree and this one (which goes first alternates too), so a slow moment of the shared
// machine hits both alike; the table gives the median of the runs of each.
//   node_modules/.bin/bun bench/compare-builds.ts --old DIR [--old-bin DIR] [--runs 5] [--only agent-scale,policy-scale,cni-latency]
// DIR: a checkout of the old commit (its bench/ and src/ run for agent-scale and
// policy-scale, which drive the source); --old-bin: the old build's dist/ (cni-latency runs
// this tree's harness with MNCNI_BIN pointing at it). Runs are kept short: agent-scale
// without its watch-fed part, policy-scale with one throughput round, cni-latency with 20
// pods per setup and 10 in flight.
import "./help.ts";
import { spawnSync } from "bun";
import { join, resolve } from "node:path";

const arg = (name: string, def?: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const OLD = resolve(arg("--old") ?? "");
const OLD_BIN = arg("--old-bin");
const RUNS = Number(arg("--runs", "5"));
const ONLY = (arg("--only", "agent-scale,policy-scale,cni-latency") ?? "").split(",");
const NEW = resolve(import.meta.dir, "..");
const BUN = process.execPath;

interface Bench {
  name: string;
  run(tree: "old" | "new"): string;
  /** Metric name -> the regular expression whose first group is its value (ms). */
  metrics: Record<string, RegExp>;
}

const sh = (argv: string[], cwd: string, env: Record<string, string> = {}) => {
  const p = spawnSync(argv, { cwd, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")} (in ${cwd}) failed: ${p.stderr.toString().slice(-800)}`);
  return p.stdout.toString();
};
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const textRow = (label: string) => new RegExp(`^${esc(label)}\\s+([\\d.]+) ms`, "m");
const mdRow = (label: string, col = 1) => new RegExp(`^\\| ${esc(label)}[^|]*${"\\|[^|]*".repeat(col - 1)}\\|\\s*([\\d.]+)`, "m");

const BENCHES: Bench[] = [
  {
    name: "agent-scale",
    run: (t) => sh([BUN, "bench/agent-scale.ts", "--no-watch"], t === "old" ? OLD : NEW),
    metrics: {
      "agent-scale: converge from empty (1000 Nodes)": textRow("converge from empty"),
      "agent-scale: no-change resync": textRow("no-change resync"),
      "agent-scale: one Node changes (resync + reconcile)": textRow("one Node changes (resync + reconcile)"),
      "agent-scale: one Node changes, end to end via fs.watch": textRow("one Node changes, end to end via fs.watch"),
    },
  },
  {
    name: "policy-scale",
    run: (t) => sh([BUN, "bench/policy-scale.ts", "--rounds", "1"], t === "old" ? OLD : NEW),
    metrics: {
      "policy-scale: full compile + apply": mdRow("full compile + apply"),
      "policy-scale: one pod added, to programmed": mdRow("one pod added"),
      "policy-scale: one pod removed, to programmed": mdRow("one pod removed"),
      "policy-scale: one policy changed, to programmed": mdRow("one policy changed"),
      "policy-scale: agent restart (adopt the table)": mdRow("agent restart"),
      "policy-scale: ruleset listing (once per pass)": mdRow("ruleset listing"),
    },
  },
  {
    name: "cni-latency",
    run: (t) => sh([BUN, "bench/cni-latency.ts", "--pods", "20", "--parallel", "10", "--no-write"], NEW, t === "old" ? { MNCNI_BIN: join(resolve(OLD_BIN ?? join(OLD, "dist")), "mncni") } : {}),
    metrics: {
      "cni-latency: ADD p50, bridge served via the native forwarder": mdRow("mncni bridge, served via the native forwarder"),
      "cni-latency: ADD p50, bridge served, Bun plugin process": mdRow("mncni bridge, served, Bun plugin process"),
      "cni-latency: ADD p50, bridge plugin alone": mdRow("mncni bridge, plugin alone"),
      "cni-latency: ADD p50, hostPort + bandwidth served via the forwarder": mdRow("mncni bridge + hostPort + bandwidth, served via the native forwarder"),
      "cni-latency: ADD p50 10 parallel, bridge served via the forwarder": mdRow("mncni bridge, served via the native forwarder", 4),
    },
  },
];

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const values = new Map<string, { old: number[]; new: number[] }>();
const started = Date.now();
for (const b of BENCHES.filter((x) => ONLY.includes(x.name))) {
  for (let i = 0; i < RUNS; i++) {
    for (const t of (i % 2 ? ["new", "old"] : ["old", "new"]) as ("old" | "new")[]) {
      const out = b.run(t);
      for (const [m, re] of Object.entries(b.metrics)) {
        const v = re.exec(out)?.[1];
        if (v === undefined) throw new Error(`${b.name} (${t}): no "${m}" in its output:\n${out.slice(0, 2000)}`);
        const e = values.get(m) ?? { old: [], new: [] };
        e[t].push(Number(v));
        values.set(m, e);
      }
      process.stderr.write(`${b.name} run ${i + 1}/${RUNS} ${t} done\n`);
    }
  }
}
const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`Old (${OLD}${OLD_BIN ? `, build ${OLD_BIN}` : ""}) vs new (${NEW}), interleaved, ${RUNS} runs each, median (min-max); ${((Date.now() - started) / 60000).toFixed(1)} min, load average at the end ${load}.\n`);
console.log("| measure | old | new | new / old |");
console.log("|---|---|---|---|");
const fmt = (a: number[]) => `${median(a).toFixed(1)} (${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)})`;
for (const [m, v] of values) console.log(`| ${m} (ms) | ${fmt(v.old)} | ${fmt(v.new)} | ${(median(v.new) / median(v.old)).toFixed(2)} |`);
