// Lab benchmark: bring-up time of 3x2 and 10x10 labs (nodes x pods per node) on the Kubernetes
// source (the lab's API server, two controllers, agents reading it: the default) against
// `--source dir` (the manifests directory: the baseline), interleaved in the same run; `lab
// check` time; per-pod ADD time as measured by the lab's CNI executor; and how long after
// `lab pod add` starts its Pod is Running with its IP in the API (seen by a watch), against
// the time `lab pod add` takes on the dir source. Run as root:
//   bun bench/lab.ts [--wiring auto|agent|static] [--sizes 3x2,10x10|none] [--rounds 3] [--pods 20]
import "./help.ts";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { KubeClient, loadKubeconfig, RESOURCES } from "../src/kube/index.ts";
import type { CheckReport } from "../src/lab/check.ts";
import type { LabStatus } from "../src/lab/status.ts";

const { values: v } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    wiring: { type: "string", default: "auto" },
    sizes: { type: "string", default: "3x2,10x10" },
    rounds: { type: "string", default: "3" },
    pods: { type: "string", default: "20" },
    sources: { type: "string", default: "dir,kubernetes" },
  },
});
const bin = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni");
const cmd = existsSync(bin) ? [bin] : [process.execPath, resolve(import.meta.dir, "../src/main.ts")];
const TARGET_S: Record<string, number> = { "3x2": 10, "10x10": 60 };
const SOURCES = v.sources.split(",");
const ROUNDS = Number(v.rounds);

function lab(argv: string[]): { code: number; stdout: string; stderr: string; s: number } {
  const t = performance.now();
  const p = Bun.spawnSync([...cmd, "lab", ...argv], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString(), s: (performance.now() - t) / 1000 };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

const median = (xs: number[]) => pct(xs, 50);
const labName = (tag: string) => `mnlb${tag}${process.pid.toString(36)}`.slice(0, 10);

interface Row {
  size: string;
  source: string;
  ups: number[];
  check: number;
  checks: string;
  adds: number[];
  wiring: string;
  chain: string;
}

const rows: Row[] = [];
for (const size of v.sizes.split(",").filter((x) => x && x !== "none")) {
  const [nodes, pods] = size.split("x");
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved: each round brings up one lab of each source, alternating which goes first.
    for (const source of round % 2 ? [...SOURCES].reverse() : SOURCES) {
      const name = labName(source[0]!);
      lab(["down", "--name", name, "-q"]);
      try {
        const up = lab(["up", "--name", name, "-q", "--nodes", nodes!, "--pods-per-node", pods!, "--wiring", v.wiring, "--source", source]);
        if (up.code !== 0) throw new Error(`lab up ${size} --source ${source} failed:\n${up.stderr}`);
        let row = rows.find((r) => r.size === size && r.source === source);
        if (!row) {
          // The check and the ADD times once per size and source (the first round).
          const chk = lab(["check", "--name", name, "--json"]);
          const rep = JSON.parse(chk.stdout) as CheckReport;
          const st = JSON.parse(lab(["status", "--name", name, "--json"]).stdout) as LabStatus;
          const conf = st.nodes[0]?.cniConfig;
          const chain = conf ? (JSON.parse(readFileSync(conf, "utf8")).plugins ?? []).map((p: { type: string; ipam?: { type: string } }) => (p.ipam ? `${p.type}+${p.ipam.type}` : p.type)).join(",") : "?";
          row = { size, source, ups: [], check: chk.s, checks: `${rep.passed}/${rep.passed + rep.failed}`, adds: st.pods.map((p) => p.runtimeAddMs ?? NaN).filter((x) => !Number.isNaN(x)), wiring: st.wiring, chain };
          rows.push(row);
        }
        row.ups.push(up.s);
      } finally {
        lab(["down", "--name", name, "-q"]);
      }
    }
  }
}

const print = (header: string[], table: string[][]) => {
  const w = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  for (const line of [header, ...table]) console.log(line.map((c, i) => c.padEnd(w[i]!)).join("  "));
};

console.log(`mncni lab benchmark (${cmd.join(" ")}; ${ROUNDS} round(s), sources interleaved; load ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")})`);
const base = (size: string) => rows.find((r) => r.size === size && r.source === "dir");
if (rows.length) print(
  ["lab", "source", "up s (median)", "up s (all)", "vs dir", "target", "check s", "checks ok", "ADD p50 ms", "ADD p90 ms", "wiring", "chain"],
  rows.map((r) => {
    const b = base(r.size);
    const ratio = b ? median(r.ups) / median(b.ups) : NaN;
    const target = r.source === "kubernetes" ? `<= 1.5x and <= ${TARGET_S[r.size] ?? "?"} s` : `<= ${TARGET_S[r.size] ?? "?"} s`;
    return [r.size, r.source, median(r.ups).toFixed(2), r.ups.map((u) => u.toFixed(2)).join(" "), Number.isNaN(ratio) ? "-" : `${ratio.toFixed(2)}x`, target, r.check.toFixed(2), r.checks, pct(r.adds, 50).toFixed(1), pct(r.adds, 90).toFixed(1), r.wiring, r.chain];
  }),
);

// A pod added by `lab pod add`: how long from the command's start until the API shows it
// Running with its IP (a watch in this process sees the status patch); the baseline is the
// whole `lab pod add` on the dir source (its manifest has the IP when the command returns).
const N = Number(v.pods);
if (N > 0) {
  const running: Record<string, number[]> = {};
  for (const source of SOURCES) {
    const name = labName(`p${source[0]}`);
    lab(["down", "--name", name, "-q"]);
    try {
      const up = lab(["up", "--name", name, "-q", "--nodes", "2", "--pods-per-node", "0", "--wiring", v.wiring, "--source", source]);
      if (up.code !== 0) throw new Error(`lab up --source ${source} failed:\n${up.stderr}`);
      const seen = new Map<string, number>();
      const abort = new AbortController();
      if (source === "kubernetes") {
        const kubeconfig = lab(["kubeconfig", "--name", name]).stdout.trim();
        const client = new KubeClient(loadKubeconfig(kubeconfig));
        const opened = Promise.withResolvers<void>();
        void (async () => {
          try {
            for await (const ev of client.watch<any>(RESOURCES.pods, { namespace: "default", signal: abort.signal, onOpen: () => opened.resolve() })) {
              const o = ev.object as any;
              if (ev.type !== "ERROR" && o?.status?.phase === "Running" && o.status.podIP && !seen.has(o.metadata.name)) seen.set(o.metadata.name, performance.now());
            }
          } catch {
            /* aborted at the end */
          }
        })();
        await opened.promise;
      }
      const times: number[] = [];
      for (let i = 0; i < N; i++) {
        const node = `node${(i % 2) + 1}`;
        const t0 = performance.now();
        const r = lab(["pod", "add", "--name", name, node, `b${i}`]);
        if (r.code !== 0) throw new Error(`lab pod add failed:\n${r.stderr}`);
        if (source === "kubernetes") {
          const k8sName = `${node}-b${i}`;
          const deadline = Date.now() + 5000;
          while (!seen.has(k8sName) && Date.now() < deadline) await Bun.sleep(1);
          times.push((seen.get(k8sName) ?? NaN) - t0);
        } else times.push(performance.now() - t0);
      }
      abort.abort();
      running[source] = times;
    } finally {
      lab(["down", "--name", name, "-q"]);
    }
  }
  console.log("");
  console.log(`lab pod add, ${N} pods one after the other on a 2-node lab:`);
  print(
    ["source", "measured", "p50 ms", "p90 ms", "max ms", "target"],
    SOURCES.map((s) => [
      s, s === "kubernetes" ? "command start -> Running with its IP in a watch" : "command start -> command done (manifest has the IP)",
      pct(running[s]!, 50).toFixed(0), pct(running[s]!, 90).toFixed(0), Math.max(...running[s]!).toFixed(0), s === "kubernetes" ? "p50 <= 200" : "baseline",
    ]),
  );
}
