// Lab benchmark: bring-up time of 3x2 and 10x10 labs (nodes x pods per node), `lab check`
// time, and per-pod ADD time as measured by the lab's CNI executor (whole chain, including
// `ip netns exec` into the node). Run as root: bun bench/lab.ts [--wiring auto|agent|static]
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { CheckReport } from "../src/lab/check.ts";
import type { LabStatus } from "../src/lab/status.ts";

const { values: v } = parseArgs({ args: Bun.argv.slice(2), options: { wiring: { type: "string", default: "auto" }, sizes: { type: "string", default: "3x2,10x10" } } });
const bin = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni");
const cmd = existsSync(bin) ? [bin] : [process.execPath, resolve(import.meta.dir, "../src/main.ts")];
const TARGET_S: Record<string, number> = { "3x2": 10, "10x10": 60 };

function lab(argv: string[]): { code: number; stdout: string; stderr: string; s: number } {
  const t = performance.now();
  const p = Bun.spawnSync([...cmd, "lab", ...argv], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString(), s: (performance.now() - t) / 1000 };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

interface Row {
  size: string;
  up: number;
  target: number;
  check: number;
  checks: string;
  addP50: number;
  addP90: number;
  addMax: number;
  wiring: string;
  chain: string;
}

const rows: Row[] = [];
for (const size of v.sizes.split(",")) {
  const [nodes, pods] = size.split("x");
  const name = `mnlb${process.pid.toString(36)}`.slice(0, 10);
  lab(["down", "--name", name, "-q"]);
  try {
    const up = lab(["up", "--name", name, "-q", "--nodes", nodes!, "--pods-per-node", pods!, "--wiring", v.wiring]);
    if (up.code !== 0) throw new Error(`lab up ${size} failed:\n${up.stderr}`);
    const chk = lab(["check", "--name", name, "--json"]);
    const rep = JSON.parse(chk.stdout) as CheckReport;
    const st = JSON.parse(lab(["status", "--name", name, "--json"]).stdout) as LabStatus;
    const adds = st.pods.map((p) => p.runtimeAddMs ?? NaN).filter((x) => !Number.isNaN(x));
    const conf = st.nodes[0]?.cniConfig;
    const chain = conf ? (JSON.parse(readFileSync(conf, "utf8")).plugins ?? []).map((p: { type: string; ipam?: { type: string } }) => (p.ipam ? `${p.type}+${p.ipam.type}` : p.type)).join(",") : "?";
    rows.push({ size, up: up.s, target: TARGET_S[size] ?? NaN, check: chk.s, checks: `${rep.passed}/${rep.passed + rep.failed}`, addP50: pct(adds, 50), addP90: pct(adds, 90), addMax: Math.max(...adds), wiring: st.wiring, chain });
  } finally {
    lab(["down", "--name", name, "-q"]);
  }
}

const header = ["lab", "up s", "target s", "check s", "checks ok", "ADD p50 ms", "ADD p90 ms", "ADD max ms", "wiring", "chain"];
const table = rows.map((r) => [r.size, r.up.toFixed(2), String(r.target), r.check.toFixed(2), r.checks, r.addP50.toFixed(1), r.addP90.toFixed(1), r.addMax.toFixed(1), r.wiring, r.chain]);
const w = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
console.log(`mncni lab benchmark (${cmd.join(" ")})`);
for (const line of [header, ...table]) console.log(line.map((c, i) => c.padEnd(w[i]!)).join("  "));
const slow = rows.filter((r) => r.up > r.target);
if (slow.length) console.log(`over target: ${slow.map((r) => r.size).join(", ")}`);
