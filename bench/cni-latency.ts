// Benchmark: CNI ADD and DEL latency of mncni against the Go reference plugins, as a
// runtime sees it (process start included). Run as root:
//   node_modules/.bin/bun bench/cni-latency.ts [--pods 100] [--parallel 20] [--no-write]
// Setups, each in its own throwaway node namespace, IPv4, cniVersion 1.0.0:
//   mncni bridge + mncni-ipam: served via the native forwarder / served, Bun plugin process /
//     plugin alone / forwarder with no server   vs  reference bridge + host-local
//   mncni routed + mncni-ipam: served via the native forwarder / plugin alone  vs  reference ptp + host-local
//   mncni bridge with one port mapping and a bandwidth limit (runtimeConfig; built in): served via
//     the native forwarder / plugin alone  vs  the chain reference bridge + host-local, portmap, bandwidth
// "Served": the config names the socket of a `mncni serve` running in the node namespace (what
// the agent does on a cluster node); the plugin process hands the call over.
// Every plugin is started the same way (`ip netns exec NODE /path/plugin`, same env), and
// the setups are interleaved: pod i is added by every setup before pod i+1, so a slow
// moment of the shared machine hits all of them alike. Then the same with `--parallel`
// calls in flight (rounds of that many pods, setups taking turns). Peak RSS is the largest
// maxRSS of a few extra ADD/DEL calls run under /usr/bin/time (not part of the timings).
// Prints a markdown table and writes it to docs/benchmarks.md (unless --no-write).
import "./help.ts";
import { spawnSync } from "bun";
import { readFileSync, symlinkSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { BenchHarness, percentile, type PluginSetup, runPlugin, sh, writeBenchmarksBlock } from "./cni-harness.ts";

const REF_DIR = "/usr/lib/cni";
const MNCNI = resolve(process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni"));
/** The native forwarder built beside it (make build), with mncni-core beside both. */
const FORWARDER = resolve(dirname(MNCNI), "mncni-forward");

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const PODS = flag("pods", 100);
const PARALLEL = flag("parallel", 20);
const WRITE = !process.argv.includes("--no-write");

const h = new BenchHarness("mnr");
const { tag, tmp } = h;
const netns = (name: string) => h.netns(name);
const servers: ReturnType<typeof Bun.spawn>[] = [];

const CHAIN = "reference bridge + host-local, portmap, bandwidth (chain)";
const capabilities = (i: number) => ({
  portMappings: [{ hostPort: 20000 + i, containerPort: 80, protocol: "tcp" }],
  bandwidth: { ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 100_000_000, egressBurst: 1_000_000 },
});

interface Setup extends PluginSetup {
  /** Which reference setup this one is compared with (undefined: it is a reference). */
  baseline?: string;
  add: number[];
  del: number[];
  parAdd: number[];
  parDel: number[];
  maxRss: number;
  /** The socket of the `mncni serve` this setup's calls are handed to. */
  socket?: string;
  /** runtimeConfig of pod i (capabilities), given to every plugin of the setup. */
  runtime?: (i: number) => Record<string, unknown>;
  /** Further plugins run after the first as a chain, as libcni does (prevResult; DEL in reverse). */
  chain?: { bin: string; conf: Record<string, unknown> }[];
  /** Each pod's ADD result (a chain's DEL passes it as prevResult). */
  results: Map<number, unknown>;
}

let setupCount = 0;

function setup(label: string, o: {
  baseline?: string; bin: string; cniPath: string; served?: boolean; conf: (dir: string) => Record<string, unknown>;
  runtime?: (i: number) => Record<string, unknown>; chain?: { bin: string; conf: Record<string, unknown> }[];
}): Setup {
  const id = `s${setupCount++}`;
  const dir = `${tmp}/${id}`;
  sh(["mkdir", "-p", dir]);
  const node = netns(`${tag}-${id}`);
  const pods = Array.from({ length: PODS }, (_, i) => netns(`${tag}-${id}p${i}`));
  const socket = o.served ? `${dir}/cni.sock` : undefined;
  const conf = { cniVersion: "1.0.0", name: `bench${id}`, ...o.conf(dir), ...(socket ? { agentSocket: socket } : {}) };
  return { label, baseline: o.baseline, bin: o.bin, cniPath: o.cniPath, conf, node, pods, add: [], del: [], parAdd: [], parDel: [], maxRss: 0, socket, runtime: o.runtime, chain: o.chain, results: new Map() };
}

async function call(s: Setup, command: "ADD" | "DEL" | "VERSION", i: number, o: { rss?: boolean } = {}): Promise<number> {
  if (!s.chain || command === "VERSION") return callOne(s, s.bin, s.conf, command, i, o);
  // A chain: every plugin in turn (DEL in reverse), each ADD given the previous one's result.
  const plugins = [{ bin: s.bin, conf: s.conf }, ...s.chain];
  let ms = 0;
  let prev: unknown = command === "DEL" ? s.results.get(i) : undefined;
  for (const p of command === "DEL" ? plugins.reverse() : plugins) {
    const conf = { ...p.conf, cniVersion: s.conf.cniVersion, name: s.conf.name, ...(prev ? { prevResult: prev } : {}) };
    const out: { result?: unknown } = {};
    ms += await callOne(s, p.bin, conf, command, i, { ...o, out });
    if (command === "ADD") prev = out.result;
  }
  if (command === "ADD") s.results.set(i, prev);
  return ms;
}

async function callOne(s: Setup, bin: string, baseConf: Record<string, unknown>, command: "ADD" | "DEL" | "VERSION", i: number, o: { rss?: boolean; out?: { result?: unknown } } = {}): Promise<number> {
  const conf = s.runtime ? { ...baseConf, runtimeConfig: s.runtime(i) } : baseConf;
  // The RSS pass wraps the plugin in time(1): getrusage of our own child would report this
  // process's RSS (the child shares our memory until exec, and exec records its high-water mark).
  const rssFile = `${tmp}/rss`;
  const { ms, stdout } = await runPlugin({
    label: s.label, node: s.node, bin, cniPath: s.cniPath, conf, command, containerId: `bench-${i}`, pod: s.pods[i]!,
    wrap: o.rss ? ["/usr/bin/time", "-f", "%M", "-o", rssFile] : undefined,
  });
  if (o.rss) s.maxRss = Math.max(s.maxRss, Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) * 1024);
  if (o.out && stdout.trim()) o.out.result = JSON.parse(stdout);
  return ms;
}

const fmt = (xs: number[]) => `${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 90).toFixed(1)}`;

async function main(): Promise<void> {
  const mncniDir = `${tmp}/bin`;
  sh(["mkdir", "-p", mncniDir]);
  symlinkSync(MNCNI, `${mncniDir}/mncni`);
  symlinkSync(MNCNI, `${mncniDir}/mncni-ipam`);
  const mncniIpam = (dir: string) => ({ type: "mncni-ipam", ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: `${dir}/ipam` });
  const hostLocal = (dir: string) => ({ type: "host-local", ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: `${dir}/ipam` });
  const mncni = (mode: string) => (dir: string) => ({ type: "mncni", mode, logFile: `${dir}/cni.log`, ipam: mncniIpam(dir) });
  const mn = { bin: `${mncniDir}/mncni`, cniPath: mncniDir };
  // As the agent installs it when the native forwarder is built: the forwarder as `mncni`,
  // running `mncni-core` (next to its real file: dist/) when no server takes the call.
  const fwdDir = `${tmp}/fwd`;
  sh(["mkdir", "-p", fwdDir]);
  symlinkSync(FORWARDER, `${fwdDir}/mncni`);
  symlinkSync(MNCNI, `${fwdDir}/mncni-ipam`);
  const fw = { bin: `${fwdDir}/mncni`, cniPath: fwdDir };
  const ref = (type: string) => ({ bin: `${REF_DIR}/${type}`, cniPath: REF_DIR });

  const setups = [
    setup("reference bridge + host-local", { ...ref("bridge"), conf: (d) => ({ type: "bridge", bridge: "cbr0", isGateway: true, hairpinMode: true, ipam: hostLocal(d) }) }),
    setup("mncni bridge, served via the native forwarder", { ...fw, served: true, baseline: "reference bridge + host-local", conf: mncni("bridge") }),
    setup("mncni bridge, served, Bun plugin process", { ...mn, served: true, baseline: "reference bridge + host-local", conf: mncni("bridge") }),
    setup("mncni bridge, plugin alone", { ...mn, baseline: "reference bridge + host-local", conf: mncni("bridge") }),
    setup("mncni bridge, forwarder with no server", { ...fw, baseline: "reference bridge + host-local", conf: mncni("bridge") }),
    setup("reference ptp + host-local", { ...ref("ptp"), conf: (d) => ({ type: "ptp", ipam: hostLocal(d) }) }),
    setup("mncni routed, served via the native forwarder", { ...fw, served: true, baseline: "reference ptp + host-local", conf: mncni("routed") }),
    setup("mncni routed, plugin alone", { ...mn, baseline: "reference ptp + host-local", conf: mncni("routed") }),
    // One host port per pod and a limit each way, as a pod with a hostPort and both bandwidth annotations.
    setup(CHAIN, {
      ...ref("bridge"),
      runtime: capabilities,
      conf: (d) => ({ type: "bridge", bridge: "cbr0", isGateway: true, hairpinMode: true, ipam: hostLocal(d) }),
      chain: [
        { bin: `${REF_DIR}/portmap`, conf: { type: "portmap", capabilities: { portMappings: true }, snat: true } },
        { bin: `${REF_DIR}/bandwidth`, conf: { type: "bandwidth", capabilities: { bandwidth: true } } },
      ],
    }),
    setup("mncni bridge + hostPort + bandwidth, served via the native forwarder", { ...fw, served: true, baseline: CHAIN, runtime: capabilities, conf: mncni("bridge") }),
    setup("mncni bridge + hostPort + bandwidth, plugin alone", { ...mn, baseline: CHAIN, runtime: capabilities, conf: mncni("bridge") }),
  ];
  // One `mncni serve` per served setup, inside its node namespace, as the agent runs on a node.
  for (const s of setups) {
    if (!s.socket) continue;
    servers.push(await h.serve(MNCNI, s.node, s.socket, s.label));
  }

  const t0 = performance.now();
  // Sequential: one call at a time, setups interleaved per pod.
  for (let i = 0; i < PODS; i++) for (const s of setups) s.add.push(await call(s, "ADD", i));
  for (let i = 0; i < PODS; i++) for (const s of setups) s.del.push(await call(s, "DEL", i));
  // Parallel: rounds of PARALLEL pods in flight for one setup, setups taking turns.
  for (let start = 0; start < PODS; start += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, PODS - start) }, (_, k) => start + k);
    for (const s of setups) s.parAdd.push(...(await Promise.all(batch.map((i) => call(s, "ADD", i)))));
  }
  for (let start = 0; start < PODS; start += PARALLEL) {
    const batch = Array.from({ length: Math.min(PARALLEL, PODS - start) }, (_, k) => start + k);
    for (const s of setups) s.parDel.push(...(await Promise.all(batch.map((i) => call(s, "DEL", i)))));
  }
  // Process start alone (VERSION), and the RSS pass (not timed): a few ADD/DEL under time(1).
  const version = new Map<Setup, number[]>(setups.map((x) => [x, []]));
  for (let i = 0; i < 20; i++) for (const s of setups) version.get(s)!.push(await call(s, "VERSION", i));
  for (let i = 0; i < Math.min(5, PODS); i++) for (const s of setups) await call(s, "ADD", i, { rss: true });
  for (let i = 0; i < Math.min(5, PODS); i++) for (const s of setups) await call(s, "DEL", i, { rss: true });
  const seconds = (performance.now() - t0) / 1000;

  // Where the time goes, from the invocation logs (phases, see src/base/phases.ts): for the
  // plugin alone, from its runtime's clock origin; for served calls, the plugin process up to
  // the hand-over and the server's side; and the servers' peak RSS (resident: once per node).
  const notes: string[] = [];
  const med = (xs: number[]) => percentile(xs, 50);
  const phaseList = (rows: Record<string, number>[]) =>
    Object.keys(rows[0] ?? {}).map((k) => `${k} ${med(rows.map((r) => r[k] ?? 0)).toFixed(2)}`).join(", ");
  for (const s of setups.filter((x) => x.cniPath === mncniDir || x.cniPath === fwdDir)) {
    const lines = readFileSync(`${tmp}/${String(s.conf.name).replace("bench", "")}/cni.log`, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const adds = lines.filter((l) => l.command === "ADD" && l.outcome === "ok");
    if (!s.socket) {
      notes.push(`- ${s.label}: an ADD (phases p50, ms): ${phaseList(adds.map((l) => l.phases))}.`);
      continue;
    }
    const served = adds.filter((l) => l.served);
    const status = readFileSync(`/proc/${servers[setups.filter((x) => x.socket).indexOf(s)]!.pid}/status`, "utf8");
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    notes.push(
      `- ${s.label}: the plugin process until it hands the ADD over (phases p50, ms): ${phaseList(served.map((l) => l.served.client))}; ` +
        `the server, p50 ${med(served.map((l) => l.durationMs)).toFixed(2)} ms: ${phaseList(served.map((l) => l.phases))}. \`mncni serve\` peak RSS ${hwm.toFixed(1)} MiB.`,
    );
  }

  const ratio = (s: Setup, pick: (x: Setup) => number[]) => {
    const b = setups.find((x) => x.label === s.baseline);
    return b ? `${(percentile(pick(s), 50) / percentile(pick(b), 50)).toFixed(2)}x` : "—";
  };
  const rows = setups.map((s) =>
    `| ${s.label} | ${fmt(s.add)} | ${fmt(s.del)} | ${fmt(s.parAdd)} | ${fmt(s.parDel)} | ${percentile(version.get(s)!, 50).toFixed(1)} | ${(s.maxRss / 2 ** 20).toFixed(1)} | ${ratio(s, (x) => x.add)} | ${ratio(s, (x) => x.del)} |`,
  );
  const table = [
    `| setup | ADD p50 / p90 (ms) | DEL p50 / p90 (ms) | ADD p50 / p90, ${PARALLEL} parallel | DEL p50 / p90, ${PARALLEL} parallel | VERSION p50 (process start) | peak RSS (MiB) | ADD p50 vs ref | DEL p50 vs ref |`,
    "|---|---|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");

  const refVersion = spawnSync(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]).stdout.toString() || "unknown";
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const machine = `${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? "unknown"}), kernel ${kernel}, load average at the end ${load}`;
  const header = [
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine}.`,
    `mncni binary: \`${MNCNI}\` (${(Bun.file(MNCNI).size / 2 ** 20).toFixed(0)} MiB); reference plugins: containernetworking-plugins ${refVersion}; Bun ${Bun.version}.`,
    `${PODS} pods per setup, IPv4, cniVersion 1.0.0, every call \`ip netns exec NODE plugin\` (process start included); total ${seconds.toFixed(0)} s.`,
  ].join("\n");
  const report = `${header}\n\n${table}\n`;
  process.stdout.write(`${report}\n${notes.join("\n")}\n`);

  if (WRITE) {
    const section = `<!-- cni-latency:begin (written by bench/cni-latency.ts) -->
Each setup runs in its own throwaway node namespace with ${PODS} pod namespaces. The setups
are interleaved in one run (pod *i* is added by every setup before pod *i+1*; in the parallel
phase, rounds of ${PARALLEL} calls in flight, setups taking turns), so a slow moment of the shared
machine hits all of them alike: compare the ratios, not the absolute numbers. The mncni rows
are compared with the reference setup doing the same job: bridge with \`bridge\` (\`isGateway\`,
\`hairpinMode\`) + \`host-local\`, routed with \`ptp\` + \`host-local\`. "served" rows: the config
names the socket of a \`mncni serve\` running in the node namespace (what the agent does on a
node), and the plugin process hands the call over: "via the native forwarder" is what the
agent installs as \`mncni\` (src/forward/forward.c), "Bun plugin process" is the Bun executable
doing the hand-over itself. "plugin alone": no server, the Bun executable does everything;
"forwarder with no server": the same, started through the forwarder (an agent-installed node
whose agent is down). "VERSION" is the same exec path answering VERSION: the process-start
floor (the forwarder hands VERSION to the Bun executable). Peak RSS is the largest maxRSS
of 5 extra ADD and 5 DEL calls run under \`/usr/bin/time -f %M\` (not part of the timings;
for the reference it includes host-local, which bridge/ptp run as a child; a server's own
RSS is in the notes below the table).

Targets (issue 4): mncni ADD p50 at most 0.7x the reference (stretch 0.5x), DEL p50 at most
1.0x, peak RSS at most 50 MB. Issue 16: with one port mapping and a bandwidth limit each way
(built in), ADD p50 at most 0.5x the chain reference \`bridge\` + \`host-local\`, \`portmap\`
(\`snat\`), \`bandwidth\` doing the same (each pod its own host port; the chain's time is the
sum of its three plugin calls, as libcni runs them).

${report}
${notes.join("\n")}
<!-- cni-latency:end -->`;
    writeBenchmarksBlock("cni-latency", section);
  }
}

await h.run(main);
