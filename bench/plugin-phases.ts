// Where a plugin process's ADD and DEL spend their time, phase by phase, as the invocation
// log records it (src/base/phases.ts: runtime, stdin, protocol, config, load, ..., result),
// for this build and another one, interleaved (the builds take turns for every pod): a
// change that moves a fraction of a millisecond within one phase (the modules a call loads
// show in "load") is seen there, where the whole call's time at this machine's load is not.
// Bridge mode, one pod added then deleted at a time, in throwaway namespaces. Run as root:
//   node_modules/.bin/bun bench/plugin-phases.ts [--pods 200] [--bin dist/mncni] --baseline DIST
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { arg, BenchHarness, helpOr, percentile } from "./cni-harness.ts";

helpOr("usage: bun bench/plugin-phases.ts [--pods 200] [--bin dist/mncni] --baseline DIST");
const PODS = Number(arg("pods") ?? 200);
const BIN = resolve(arg("bin") ?? resolve(import.meta.dir, "../dist/mncni"));
const BASELINE = arg("baseline");
if (!BASELINE) throw new Error("--baseline DIST is needed (a build's dist directory, e.g. /work/baseline/dist-62078dc)");
if (!Number.isInteger(PODS) || PODS < 2) throw new Error(`cannot use --pods "${arg("pods")}": an integer of at least 2`);

interface InvocationLine { command: string; phases?: Record<string, number> }
const h = new BenchHarness("mph");

async function main(): Promise<void> {
  const setups = [BIN, resolve(BASELINE!, "mncni")].map((exe, n) => {
    const dir = `${h.tmp}/s${n}`;
    const bin = `${h.tmp}/bin${n}`;
    mkdirSync(dir);
    mkdirSync(bin);
    symlinkSync(exe, `${bin}/mncni`);
    symlinkSync(exe, `${bin}/mncni-ipam`);
    const node = h.netns(`${h.tag}-${n}`);
    const pods = Array.from({ length: PODS }, (_, i) => h.netns(`${h.tag}-${n}p${i}`));
    const conf = {
      cniVersion: "1.0.0", name: `bench${n}`, type: "mncni", mode: "bridge", bridge: "mnbr0", logFile: `${dir}/cni.log`,
      ipam: { type: "mncni-ipam", ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: `${dir}/ipam` },
    };
    return { label: n ? `baseline (${BASELINE})` : BIN.replace(`${resolve(import.meta.dir, "..")}/`, ""), dir, bin, node, pods, conf };
  });
  const call = async (s: (typeof setups)[0], command: string, i: number) => {
    const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: command, CNI_CONTAINERID: `bench-${i}`, CNI_NETNS: `/run/netns/${s.pods[i]}`, CNI_IFNAME: "eth0", CNI_PATH: s.bin };
    const p = Bun.spawn(["nsenter", `--net=/run/netns/${s.node}`, `${s.bin}/mncni`], { env, stdin: Buffer.from(JSON.stringify(s.conf)), stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    if (code !== 0) throw new Error(`${s.label}: ${command} of pod ${i} failed (${code}): ${out}`);
  };
  for (let i = 0; i < PODS; i++) {
    const order = i % 2 ? [...setups].reverse() : setups;
    for (const s of order) await call(s, "ADD", i);
    for (const s of order) await call(s, "DEL", i);
  }
  const load = loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`${PODS - 1} pods per build after one warm-up, bridge mode, each call \`nsenter --net=NODE plugin\`, the builds in turn (which first flips each pod); load average at the end ${load}. p50 ms per phase.\n`);
  for (const command of ["ADD", "DEL"]) {
    // The first pod's calls warm up (the bridge is created by the first ADD).
    const lines = setups.map((s) => (readFileSync(`${s.dir}/cni.log`, "utf8").trim().split("\n").map((l) => JSON.parse(l) as InvocationLine).filter((l) => l.command === command && l.phases)).slice(1));
    const phases = [...new Set(lines.flatMap((ls) => ls.flatMap((l) => Object.keys(l.phases!))))];
    const p50 = (ls: InvocationLine[], ph: string) => percentile(ls.map((l) => l.phases![ph] ?? 0), 50);
    console.log(`| ${command} phase | ${setups.map((s) => s.label).join(" | ")} | difference |`);
    console.log(`|---|${setups.map(() => "---|").join("")}---|`);
    for (const ph of phases) console.log(`| ${ph} | ${lines.map((ls) => p50(ls, ph).toFixed(2)).join(" | ")} | ${(p50(lines[0]!, ph) - p50(lines[1]!, ph)).toFixed(2)} |`);
    console.log("");
  }
}

await h.run(main);
