// Benchmark: RunPodSandbox through containerd 1.6 (Debian's) over CRI, as kubelet creates a
// pod: mncni served (a `mncni serve` in the node namespace, as the agent runs it),
// mncni plugin alone and the Go reference bridge + host-local, interleaved in one containerd
// (each a runtime handler with its own cni_conf_dir, named in RunPodSandboxRequest), on a
// node namespace tracking nothing, then 1 connection, then 10,000 (`conntrack -R`). Run as root:
//   node_modules/.bin/bun bench/containerd-sandbox.ts [--pods 30] [--entries 10000] [--no-write] [--baseline DIST [--served-baseline]] [--glibc-forwarder]
// --baseline DIST (another build's dist/, e.g. /work/baseline/dist-35d7927): two more setups,
// the plugin alone without the forwarder (its Bun executable is the plugin) of this build and
// of that one, interleaved with the others: a before/after of the plugin process in one run;
// and, with --served-baseline, that build served too (its forwarder and its own `mncni serve`).
// --glibc-forwarder: two more setups, served and plugin alone through this build's forwarder
// compiled against glibc (as it was before it was linked against musl), same build ID.
// The setups take turns in a rotating order (a sandbox's creation spills over into the next).
// Per sandbox: RunPodSandbox's time as the CRI client sees it, and the CNI step inside it
// (from containerd's debug log: the plugin chain's exec from start to result, the loopback
// network excluded). The sandboxes are stopped and removed between rounds (not timed).
// Prints a markdown table with ratios to the reference and writes it into docs/benchmarks.md
// (unless --no-write), then the served ADD's phases inside the server (its invocation log).
// KEEP_LOG=FILE keeps a copy of containerd's debug log. Ctrl-C or SIGTERM stops containerd,
// the server and removes the namespace and files, as the end of a run does.
import { spawnSync } from "bun";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { renderConflist } from "../src/agent/conflist.ts";
import { SERVE_PROTOCOL } from "../src/serve/protocol.ts";
import { arg, helpOr, percentile, sh } from "./cni-harness.ts";
import { buildPauseImage, Containerd, CriClient } from "../test/containerd/containerd-node.ts";

const USAGE = `usage: bun bench/containerd-sandbox.ts [--pods N] [--entries N] [--no-write] [--baseline DIST [--served-baseline]] [--glibc-forwarder]
  --pods N           sandboxes per setup and condition (30)
  --entries N        tracked connections of the busy condition (10000)
  --no-write         print the table only (default: also into docs/benchmarks.md)
  --baseline DIST    also the Bun executables of this build and of DIST as the plugin (no forwarder)
  --served-baseline  also DIST served: its forwarder, handing calls to its own mncni serve
  --glibc-forwarder  also served and plugin alone through this build's forwarder compiled against glibc
                     (not with --served-baseline: both need the forwarder's second name)
Runs as root; takes several minutes (containerd, 3 conditions); cleans up on Ctrl-C or SIGTERM.`;
helpOr(USAGE);

const ROOT = resolve(import.meta.dir, "..");
const REF_DIR = "/usr/lib/cni";
const PODS = Number(arg("pods") ?? 30);
const ENTRIES = Number(arg("entries") ?? 10_000);
const WRITE = !process.argv.includes("--no-write");
const BASELINE = arg("baseline");
const GLIBC_FORWARDER = process.argv.includes("--glibc-forwarder");
const SERVED_BASELINE = BASELINE !== undefined && process.argv.includes("--served-baseline");
if (GLIBC_FORWARDER && SERVED_BASELINE) {
  console.error("containerd-sandbox: --glibc-forwarder and --served-baseline both install a forwarder as mncni-forward: pick one");
  process.exit(2);
}

const tag = `mnc${process.pid.toString(36)}`;
const tmp = mkdtempSync(`/tmp/${tag}-bench-`);
const node = `${tag}-node`;

interface Setup {
  label: string;
  handler: string;
  run: Map<number, number[]>;
  cni: Map<number, number[]>;
}

/** A logfmt time="2026-12-07T04:22:36.627365261Z" as ms since the epoch, to the microsecond. */
function logTime(line: string | undefined): number {
  const m = line?.match(/time="([^.]+)\.(\d{3})(\d*)Z"/);
  return m ? Date.parse(`${m[1]}.${m[2]}Z`) + Number(`0.${m[3] || "0"}`) : NaN;
}

/**
 * The CNI step of sandbox `id` from containerd's debug log: "begin cni setup" to its "cni
 * result" (the loopback and the pod network; sandboxes are created one at a time here).
 */
function cniStepMs(log: string, id: string): number {
  const lines = log.split("\n");
  const begin = lines.findIndex((l) => l.includes('msg="begin cni setup"') && l.includes(id));
  if (begin < 0) return NaN;
  const result = lines.slice(begin + 1).find((l) => l.includes('msg="cni result:'));
  return logTime(result) - logTime(lines[begin]);
}

/** The conflist with the mncni plugin under another type name (an executable of that name in the bin dir). */
function asType(list: unknown, type: string): object {
  const l = structuredClone(list) as { plugins: { type: string }[] };
  for (const p of l.plugins) if (p.type === "mncni") p.type = type;
  return l;
}

/** What a server answers a request of another build (it names its own build). */
function probe(socket: string): Promise<string> {
  return new Promise((ok, fail) => {
    let got = "";
    const c = createConnection(socket, () => c.end(JSON.stringify({ protocol: SERVE_PROTOCOL, build: "probe", netns: "", env: {}, stdin: "{}" }) + "\n"));
    c.on("data", (d) => (got += d.toString()));
    c.on("end", () => ok(got));
    c.on("error", fail);
  });
}

/**
 * The served ADDs' phases inside the server, p50 per condition, from the invocation log
 * (src/base/phases.ts; a served call's log line is the server's): where the served CNI step goes.
 */
function servedPhases(logFile: string, conditions: number[], seen: Map<string, { tracked: number; label: string }>): string {
  const lines = readFileSync(logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { command: string; containerId?: string; served?: { queueMs: number; client?: Record<string, number> }; durationMs: number; phases: Record<string, number> });
  const out = ["Served ADD inside the server, p50 ms (the invocation log's phases; \`native\`: the forwarder from its start to sending the request, waiting for containerd's stdin included):", ""];
  const labels = [...new Set([...seen.values()].map((v) => v.label))];
  for (const c of conditions) for (const label of labels) {
    const adds = lines.filter((l) => l.command === "ADD" && l.served && seen.get(l.containerId ?? "")?.tracked === c && seen.get(l.containerId ?? "")?.label === label);
    if (adds.length === 0) continue;
    const med = (xs: number[]) => percentile(xs, 50).toFixed(2);
    const keys = [...new Set(adds.flatMap((l) => Object.keys(l.phases)))];
    const phases = keys.map((k) => `${k} ${med(adds.map((l) => l.phases[k] ?? 0))}`).join(", ");
    out.push(`- ${c === 0 ? "tracks nothing" : `tracks ${c.toLocaleString("en")}`}, ${label} (${adds.length} ADDs): total ${med(adds.map((l) => l.durationMs))}; queue ${med(adds.map((l) => l.served!.queueMs))}; native ${med(adds.map((l) => l.served!.client?.native ?? 0))}; ${phases}`);
  }
  return out.join("\n");
}

let ctd: Containerd | undefined;
let server: ReturnType<typeof Bun.spawn> | undefined;
let baseServer: ReturnType<typeof Bun.spawn> | undefined;

async function main(): Promise<void> {
  sh(["ip", "netns", "add", node]);
  sh(["ip", "-n", node, "link", "set", "lo", "up"]);
  const bin = join(tmp, "bin");
  mkdirSync(bin);
  copyFileSync(join(ROOT, "dist/mncni-forward"), join(bin, "mncni"));
  symlinkSync(join(ROOT, "dist/mncni"), join(bin, "mncni-core"));
  symlinkSync(join(ROOT, "dist/mncni"), join(bin, "mncni-ipam"));
  for (const p of ["loopback", "bridge", "host-local"]) symlinkSync(join(REF_DIR, p), join(bin, p));
  // The Bun executables themselves as the plugin (no forwarder), under their own type names.
  if (BASELINE) {
    symlinkSync(join(ROOT, "dist/mncni"), join(bin, "mncni-this"));
    symlinkSync(resolve(BASELINE, "mncni"), join(bin, "mncni-base"));
  }
  const socket = join(tmp, "cni.sock");
  server = Bun.spawn(["ip", "netns", "exec", node, join(ROOT, "dist/mncni"), "serve", "--socket", socket], { stdout: "ignore", stderr: "ignore" });
  for (let i = 0; i < 500 && !existsSync(socket); i++) await Bun.sleep(20);
  const baseSocket = join(tmp, "cni-base.sock");
  if (SERVED_BASELINE) {
    // The baseline's forwarder under its second name; it hands calls to the baseline's server
    // (a server serves only its own build).
    copyFileSync(resolve(BASELINE!, "mncni-forward"), join(bin, "mncni-forward"));
    baseServer = Bun.spawn(["ip", "netns", "exec", node, resolve(BASELINE!, "mncni"), "serve", "--socket", baseSocket], { stdout: "ignore", stderr: "ignore" });
    for (let i = 0; i < 500 && !existsSync(baseSocket); i++) await Bun.sleep(20);
  }
  if (GLIBC_FORWARDER) {
    // The same source and build ID (the server serves only its own build) with the system
    // compiler's static glibc; named mncni-forward, the other name the forwarder answers to.
    const build = /server build (\S+)/.exec(await probe(socket))?.[1];
    if (!build) throw new Error(`cannot learn the server's build ID from ${socket}`);
    sh(["cc", "-O2", "-static", `-DMNCNI_BUILD="${build}"`, "-o", join(bin, "mncni-forward"), join(ROOT, "src/forward/forward.c")]);
  }
  const confDir = (name: string, list: object) => {
    const d = join(tmp, `net.d-${name}`);
    mkdirSync(d);
    writeFileSync(join(d, "10-bench.conflist"), JSON.stringify(list, null, 2));
    return d;
  };
  // The agent's conflist (src/agent/conflist.ts), one network and bridge per setup.
  const mncni = (subnet: string, bridge: string, served: boolean, sock = socket) =>
    renderConflist({ cniVersion: "1.0.0", podCIDRs: [subnet], mode: "bridge", bridge, mtu: 1500, ipamDataDir: join(tmp, `ipam-${bridge}`), cniLogFile: join(tmp, "cni.log"), chainPortmap: false, ...(served ? { cniSocket: sock } : {}) });
  const handlers = [
    { name: "ref", cniConfDir: confDir("ref", { cniVersion: "1.0.0", name: "ref", plugins: [{ type: "bridge", bridge: "refbr0", isGateway: true, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.244.3.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: join(tmp, "ipam-ref") } }] }) },
    { name: "served", cniConfDir: confDir("served", mncni("10.244.1.0/24", "mnsv0", true)) },
    { name: "alone", cniConfDir: confDir("alone", mncni("10.244.2.0/24", "mnal0", false)) },
    ...(BASELINE
      ? [
          { name: "this", cniConfDir: confDir("this", asType(mncni("10.244.4.0/24", "mnth0", false), "mncni-this")) },
          { name: "base", cniConfDir: confDir("base", asType(mncni("10.244.5.0/24", "mnba0", false), "mncni-base")) },
        ]
      : []),
    ...(SERVED_BASELINE ? [{ name: "bserved", cniConfDir: confDir("bserved", asType(mncni("10.244.8.0/24", "mnbs0", true, baseSocket), "mncni-forward")) }] : []),
    ...(GLIBC_FORWARDER
      ? [
          { name: "gserved", cniConfDir: confDir("gserved", asType(mncni("10.244.6.0/24", "mngs0", true), "mncni-forward")) },
          { name: "galone", cniConfDir: confDir("galone", asType(mncni("10.244.7.0/24", "mnga0", false), "mncni-forward")) },
        ]
      : []),
  ];
  const setups: Setup[] = [
    { label: "reference bridge + host-local", handler: "ref", run: new Map(), cni: new Map() },
    { label: "mncni served via the native forwarder", handler: "served", run: new Map(), cni: new Map() },
    { label: "mncni plugin alone (forwarder, no server)", handler: "alone", run: new Map(), cni: new Map() },
    ...(BASELINE
      ? [
          { label: "mncni plugin alone, this build's executable as the plugin", handler: "this", run: new Map(), cni: new Map() },
          { label: `mncni plugin alone, baseline ${BASELINE} executable as the plugin`, handler: "base", run: new Map(), cni: new Map() },
        ]
      : []),
    ...(SERVED_BASELINE ? [{ label: `mncni served, baseline ${BASELINE} (its forwarder and server)`, handler: "bserved", run: new Map(), cni: new Map() }] : []),
    ...(GLIBC_FORWARDER
      ? [
          { label: "mncni served via the forwarder built against glibc (before)", handler: "gserved", run: new Map(), cni: new Map() },
          { label: "mncni plugin alone via the forwarder built against glibc (before)", handler: "galone", run: new Map(), cni: new Map() },
        ]
      : []),
  ];
  const image = buildPauseImage(join(tmp, "image"));
  ctd = new Containerd(join(tmp, "containerd"), node, bin, handlers[1]!.cniConfDir, handlers);
  ctd.logLevel = "debug";
  await ctd.start();
  ctd.importImage(image);
  const cri = new CriClient(ctd.socket);
  // 0: no ruleset needs conntrack yet (an idle node: nothing to walk); then a `ct state` rule
  // (as masquerade or kube-proxy add) and 1 tracked connection; then 10,000.
  const conditions = [0, 1, ENTRIES];
  let n = 0;
  /** Served sandboxes (their containerd ID), the condition each was created in and its setup. */
  const seen = new Map<string, { tracked: number; label: string }>();
  try {
    for (const tracked of conditions) {
      if (tracked === 1) {
        sh(["ip", "netns", "exec", node, "nft", "add table inet mncbench; add chain inet mncbench pre { type filter hook prerouting priority 0; }; add rule inet mncbench pre ct state new accept"]);
      }
      if (tracked > 0) {
        const lines: string[] = [];
        for (let i = tracked === 1 ? 0 : 1; i < tracked; i++) {
          lines.push(`-I -p tcp -s 10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} -d 10.200.0.1 --sport ${1024 + (i % 60000)} --dport 80 --state ESTABLISHED -t 3600 -u ASSURED`);
        }
        writeFileSync(join(tmp, "load.txt"), lines.join("\n") + "\n");
        sh(["ip", "netns", "exec", node, "conntrack", "-R", join(tmp, "load.txt")]);
      }
      for (const s of setups) {
        s.run.set(tracked, []);
        s.cni.set(tracked, []);
      }
      for (let i = -1; i < PODS; i++) {
        const ids: string[] = [];
        // The order rotates: a sandbox's creation spills over (its shim and pause starting, containerd's events) into the next one's.
        const k = ((i % setups.length) + setups.length) % setups.length;
        for (const s of [...setups.slice(k), ...setups.slice(0, k)]) {
          const name = `p${n++}`;
          const started = performance.now();
          const id = await cri.runPodSandbox({ metadata: { name, uid: `uid-${name}`, namespace: "bench", attempt: 0 }, hostname: name, log_directory: join(tmp, "logs", name) }, s.handler);
          const ms = performance.now() - started;
          ids.push(id);
          if (i < 0) continue; // warm-up
          s.run.get(tracked)!.push(ms);
          const log = readFileSync(ctd.log, "utf8");
          const cni = cniStepMs(log, id);
          if (Number.isNaN(cni)) throw new Error(`no CNI step of sandbox ${id} in ${ctd.log}`);
          s.cni.get(tracked)!.push(cni);
          if (s.handler.endsWith("served")) seen.set(id, { tracked, label: s.label });
        }
        for (const id of ids) {
          await cri.stopPodSandbox(id);
          await cri.removePodSandbox(id);
        }
      }
    }
  } finally {
    cri.close();
  }
  const ref = setups[0]!;
  const cell = (xs: number[], base: number[]) => [`${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 99).toFixed(1)}`, `${(percentile(xs, 50) / percentile(base, 50)).toFixed(2)}x`];
  const what = (c: number) => (c === 0 ? "tracks nothing (no ct rule)" : `tracks ${c.toLocaleString("en")}`);
  const rows = conditions.flatMap((c) => setups.map((s) => `| ${what(c)} | ${s.label} | ${[...cell(s.run.get(c)!, ref.run.get(c)!), ...cell(s.cni.get(c)!, ref.cni.get(c)!)].join(" | ")} |`));
  const table = [
    `${PODS} sandboxes per setup and condition, interleaved in one containerd ${sh(["containerd", "--version"]).split(" ")[2]} (runc, native snapshotter), IPv4, cniVersion 1.0.0, ${cpus().length} CPUs, load average ${sh(["cat", "/proc/loadavg"]).split(" ")[0]} at the end. ms p50 / p99, ratio of p50 to the reference.`,
    "",
    "| node | setup | RunPodSandbox | vs reference | CNI step | vs reference |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  console.log(`\n${servedPhases(join(tmp, "cni.log"), conditions, seen)}`);
  if (WRITE) {
    const doc = resolve(ROOT, "docs/benchmarks.md");
    const begin = "<!-- containerd-sandbox:begin -->";
    const end = "<!-- containerd-sandbox:end -->";
    const text = readFileSync(doc, "utf8");
    writeFileSync(doc, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), `${begin}\n${table}\n${end}`) : text);
  }
}

let cleaning: Promise<void> | undefined;
/** Stops what the run started and removes what it made; once, however often it is called. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await ctd?.stop();
    if (process.env.KEEP_LOG && ctd) spawnSync(["cp", ctd.log, process.env.KEEP_LOG]);
    for (const p of [server, baseServer]) {
      p?.kill();
      await p?.exited;
    }
    spawnSync(["ip", "netns", "del", node]);
    rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.on(signal, () => {
    console.error(`containerd-sandbox: ${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(code));
  });
}

try {
  await main();
} finally {
  await cleanup();
}
