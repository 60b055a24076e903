// The plugin alone (no agent): ADD and DEL of a bridge-mode pod by the mncni executable as
// the runtime runs it, against the Go reference bridge + host-local, and optionally against
// another build, in throwaway namespaces. Per call: wall time, and the CPU time (user +
// system, from rusage) of the plugin process and its children (the reference's host-local),
// which moves much less than wall time on a shared machine. The setups take turns in a random
// order each round; each pod is added, then deleted, before the next (as a runtime creates and
// removes sandboxes). Run as root:
//   node_modules/.bin/bun bench/plugin-alone.ts [--pods 40] [--baseline DIST] [--bin dist/mncni]
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { resolve } from "node:path";
import { arg, BenchHarness, helpOr, percentile, type PluginSetup } from "./cni-harness.ts";

helpOr(`usage: bun bench/plugin-alone.ts [--pods N] [--baseline DIST] [--bin EXE]
  --pods N         pods per setup, the first a warm-up (40)
  --baseline DIST  also that build's executable as the plugin
  --bin EXE        the executable measured (dist/mncni)
Runs as root; cleans up on Ctrl-C or SIGTERM.`);

const REF_DIR = "/usr/lib/cni";
const PODS = Number(arg("pods") ?? 40);
const BIN = resolve(arg("bin") ?? resolve(import.meta.dir, "../dist/mncni"));
const BASELINE = arg("baseline");

interface Setup extends PluginSetup {
  wall: Record<"ADD" | "DEL", number[]>;
  cpu: Record<"ADD" | "DEL", number[]>;
}

const h = new BenchHarness("mpa");

async function call(s: Setup, command: "ADD" | "DEL", i: number): Promise<void> {
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: command, CNI_CONTAINERID: `bench-${i}`, CNI_NETNS: `/run/netns/${s.pods[i]}`, CNI_IFNAME: "eth0", CNI_PATH: s.cniPath };
  const t0 = performance.now();
  // nsenter execs the plugin in the node namespace (one process: its rusage is the plugin's).
  const p = Bun.spawn(["nsenter", `--net=/run/netns/${s.node}`, s.bin], { env, stdin: Buffer.from(JSON.stringify(s.conf)), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`${s.label}: ${command} of pod ${i} failed (${code}): ${out}${err}`);
  const ru = p.resourceUsage()!;
  s.wall[command].push(wall);
  s.cpu[command].push((Number(ru.cpuTime.user) + Number(ru.cpuTime.system)) / 1000);
}

async function main(): Promise<void> {
  let n = 0;
  const setup = (label: string, bin: string, cniPath: string, conf: (dir: string) => Record<string, unknown>): Setup => {
    const dir = `${h.tmp}/s${n}`;
    mkdirSync(dir);
    const node = h.netns(`${h.tag}-${n}`);
    const pods = Array.from({ length: PODS }, (_, i) => h.netns(`${h.tag}-${n}p${i}`));
    const s = { label, bin, cniPath, conf: { cniVersion: "1.0.0", name: `bench${n}`, ...conf(dir) }, node, pods, wall: { ADD: [], DEL: [] }, cpu: { ADD: [], DEL: [] } };
    n++;
    return s;
  };
  const ranges = (dir: string) => ({ ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: `${dir}/ipam` });
  const mncni = (label: string, exe: string) => {
    const bin = `${h.tmp}/bin${n}`;
    mkdirSync(bin);
    symlinkSync(exe, `${bin}/mncni`);
    symlinkSync(exe, `${bin}/mncni-ipam`);
    return setup(label, `${bin}/mncni`, bin, (dir) => ({ type: "mncni", mode: "bridge", bridge: "mnbr0", logFile: `${dir}/cni.log`, ipam: { type: "mncni-ipam", ...ranges(dir) } }));
  };
  const setups = [
    setup("reference bridge + host-local", `${REF_DIR}/bridge`, REF_DIR, (dir) => ({ type: "bridge", bridge: "cbr0", isGateway: true, hairpinMode: true, ipam: { type: "host-local", ...ranges(dir) } })),
    mncni(`mncni plugin alone (${BIN.replace(`${resolve(import.meta.dir, "..")}/`, "")})`, BIN),
    ...(BASELINE ? [mncni(`mncni plugin alone, baseline (${BASELINE})`, resolve(BASELINE, "mncni"))] : []),
  ];
  // One warm-up pod each (the bridge is created by the first ADD), not counted.
  for (const s of setups) {
    await call(s, "ADD", 0);
    await call(s, "DEL", 0);
    s.wall = { ADD: [], DEL: [] };
    s.cpu = { ADD: [], DEL: [] };
  }
  for (let i = 1; i < PODS; i++) {
    const order = [...setups].sort(() => Math.random() - 0.5);
    for (const s of order) await call(s, "ADD", i);
    for (const s of order) await call(s, "DEL", i);
  }
  const ref = setups[0]!;
  const p50 = (xs: number[]) => percentile(xs, 50);
  const ratio = (s: Setup, m: "wall" | "cpu", c: "ADD" | "DEL") => `${(p50(s[m][c]) / p50(ref[m][c])).toFixed(2)}x`;
  const rows = setups.map((s) =>
    `| ${s.label} | ${p50(s.wall.ADD).toFixed(2)} | ${ratio(s, "wall", "ADD")} | ${p50(s.cpu.ADD).toFixed(2)} | ${ratio(s, "cpu", "ADD")} | ${p50(s.wall.DEL).toFixed(2)} | ${ratio(s, "wall", "DEL")} | ${p50(s.cpu.DEL).toFixed(2)} | ${ratio(s, "cpu", "DEL")} |`,
  );
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(`${PODS - 1} pods per setup (after one warm-up), bridge mode, IPv4, cniVersion 1.0.0, each call \`nsenter --net=NODE plugin\`, setups in a random order each round; load average at the end ${load}. p50 ms.\n`);
  console.log("| setup | ADD wall | vs reference | ADD CPU | vs reference | DEL wall | vs reference | DEL CPU | vs reference |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  console.log(rows.join("\n"));
}

await h.run(main);
