// The lab's pod runtimes side by side, interleaved in one run: `lab up` of a NxP lab, then
// `lab pod add` / `lab pod remove` one pod at a time (whole commands, as a user runs them), with
// the direct runtime (the lab runs the chain) and with containerd (RunPodSandbox over CRI, the
// plugin exec'd by containerd). Run as root: bun bench/lab-runtime.ts [--size 3x2] [--rounds 3] [--pods 5]
import "./help.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { LabStatus } from "../src/lab/status.ts";

const { values: v } = parseArgs({ args: Bun.argv.slice(2), options: { size: { type: "string", default: "3x2" }, rounds: { type: "string", default: "3" }, pods: { type: "string", default: "5" } } });
const bin = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni");
if (!existsSync(bin)) throw new Error(`no executable at ${bin}: run make build (or set MNCNI_BIN)`);
const RUNTIMES = ["direct", "containerd"] as const;

function lab(argv: string[]): { stdout: string; ms: number } {
  const t = performance.now();
  const p = Bun.spawnSync([bin, "lab", ...argv], { stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t;
  if (p.exitCode !== 0) throw new Error(`lab ${argv.join(" ")} failed: ${p.stderr.toString()}`);
  return { stdout: p.stdout.toString(), ms };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

const [nodes, perNode] = v.size.split("x");
const m = Object.fromEntries(RUNTIMES.map((r) => [r, { up: [] as number[], add: [] as number[], remove: [] as number[], sandbox: [] as number[], plugin: [] as number[] }]));
for (let round = 0; round < Number(v.rounds); round++) {
  for (const rt of round % 2 ? [...RUNTIMES].reverse() : RUNTIMES) {
    const name = `mnrt${process.pid.toString(36)}`.slice(0, 10);
    lab(["down", "--name", name, "-q"]);
    try {
      m[rt]!.up.push(lab(["up", "--name", name, "-q", "--nodes", nodes!, "--pods-per-node", perNode!, "--wiring", "agent", "--runtime", rt]).ms);
      for (let i = 0; i < Number(v.pods); i++) {
        m[rt]!.add.push(lab(["pod", "add", "--name", name, "node1", `b${i}`]).ms);
        const st = JSON.parse(lab(["status", "--name", name, "--json"]).stdout) as LabStatus;
        const added = st.pods.find((p) => p.name === `b${i}` && p.node === "node1");
        if (added?.runtimeAddMs !== undefined) m[rt]!.sandbox.push(added.runtimeAddMs);
        if (added?.addMs !== undefined) m[rt]!.plugin.push(added.addMs);
        m[rt]!.remove.push(lab(["pod", "remove", "--name", name, "node1", `b${i}`]).ms);
      }
    } finally {
      lab(["down", "--name", name, "-q"]);
    }
  }
}

const f = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(0));
const header = ["runtime", `up ${v.size} p50 ms`, "pod add p50 ms", "pod add p90 ms", "chain/RunPodSandbox p50 ms", "plugin ADD p50 ms", "pod remove p50 ms", "up / direct", "pod add / direct"];
const rows = RUNTIMES.map((r) => [
  r, f(pct(m[r]!.up, 50)), f(pct(m[r]!.add, 50)), f(pct(m[r]!.add, 90)), f(pct(m[r]!.sandbox, 50)), f(pct(m[r]!.plugin, 50)), f(pct(m[r]!.remove, 50)),
  (pct(m[r]!.up, 50) / pct(m.direct!.up, 50)).toFixed(2), (pct(m[r]!.add, 50) / pct(m.direct!.add, 50)).toFixed(2),
]);
const w = header.map((h, i) => Math.max(h.length, ...rows.map((t) => t[i]!.length)));
console.log(`lab runtimes (${bin}; ${v.rounds} rounds interleaved, ${v.pods} pod add/remove per round; chain/RunPodSandbox: what the runtime waited for, runtimeAddMs in lab status; plugin ADD: the plugin's own, from the invocation log)`);
for (const line of [header, ...rows]) console.log(line.map((c, i) => c.padEnd(w[i]!)).join("  "));
