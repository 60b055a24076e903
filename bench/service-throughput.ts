// Pod-to-Service throughput (the seeds' benchmark plan): TCP and UDP, one and eight streams
// (iperf3 -P 8), from a pod to a Service whose one backend is on the same node and on another
// node, next to the same pod talking to that backend's address directly — the baseline,
// measured in the same round, seconds apart (direct and Service alternate, the order flipping
// every round). Target: Service >= 0.95 of direct. A lab of two nodes (the agents run the
// Service proxy), per mode. UDP rows also give the share of datagrams the receiver's socket
// dropped (Udp RcvbufErrors of its namespace): unthrottled, one stream overruns one receiver,
// and the figure is then the receiver's, not the path's; the paced row is the path's.
// Run as root: node_modules/.bin/bun bench/service-throughput.ts [--rounds 5] [--duration 2] [--tests tcp1,tcp8,udp1,udp8,udp1p]
//   [--modes bridge,routed] [--no-write] [--json]. The lab it makes (svcb<pid>) is removed at
//   the end, also on failure or Ctrl-C.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { inNs, sh } from "./shell.ts";

const { values: v } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    rounds: { type: "string", default: "5" },
    duration: { type: "string", default: "2" },
    modes: { type: "string", default: "bridge,routed" },
    tests: { type: "string", default: "tcp1,tcp8,udp1,udp8,udp1p" },
    "no-write": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (v.help) {
  console.log("usage: bun bench/service-throughput.ts [--rounds 5] [--duration 2] [--modes bridge,routed] [--tests tcp1,tcp8,udp1,udp8,udp1p] [--no-write] [--json]");
  process.exit(0);
}
const ROUNDS = Number(v.rounds);
const DUR = Number(v.duration);
const ROOT = resolve(import.meta.dir, "..");
const BIN = resolve(process.env.MNCNI_BIN ?? `${ROOT}/dist/mncni`);
const LAB = `svcb${process.pid.toString(36)}`.slice(0, 10);
const PORT = 5201;
const log = (s: string) => console.error(`[service-throughput] ${s}`);

const lab = (...argv: string[]) => sh([BIN, "lab", argv[0]!, "--name", LAB, ...argv.slice(1)]);
const servers: Bun.Subprocess[] = [];
let labUp = false;

function cleanup(): void {
  for (const p of servers) if (p.exitCode === null) p.kill("SIGTERM");
  servers.length = 0;
  if (labUp) sh([BIN, "lab", "down", "--name", LAB, "-q"], { allowFail: true });
  labUp = false;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => (cleanup(), process.exit(130)));

interface Test {
  key: string;
  label: string;
  args: string[];
}
const ALL_TESTS: Test[] = [
  { key: "tcp1", label: "TCP, 1 stream", args: [] },
  { key: "tcp8", label: "TCP, 8 streams", args: ["-P", "8"] },
  // Unlimited rate, full-size datagrams: what the receiver got, the loss taken out.
  { key: "udp1", label: "UDP, 1 stream", args: ["-u", "-b", "0", "-l", "1400"] },
  { key: "udp8", label: "UDP, 8 streams", args: ["-u", "-b", "0", "-l", "1400", "-P", "8"] },
  // Paced below what a receiver keeps up with on a loaded machine: the path's own losses, if any.
  { key: "udp1p", label: "UDP, 1 stream, 200 Mbit/s paced", args: ["-u", "-b", "200M", "-l", "1400"] },
];
const TESTS = ALL_TESTS.filter((t) => v.tests!.split(",").includes(t.key));
if (TESTS.length === 0) throw new Error(`cannot use --tests "${v.tests}": expected some of ${ALL_TESTS.map((t) => t.key).join(",")}`);

interface Pair {
  mode: string;
  where: "same node" | "cross node";
  clientNs: string;
  /** The backend's namespace (the receiver, direct or through the Service). */
  serverNs: string;
  direct: string;
  service: string;
}

/** The receiver's UDP counters (/proc/net/snmp of its namespace): datagrams delivered, and dropped because its socket buffer was full. */
function udpCounters(ns: string): { in: number; rcvbuf: number } {
  const lines = sh(inNs(ns, ["cat", "/proc/net/snmp"])).out.split("\n").filter((l) => l.startsWith("Udp:"));
  const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
  const at = (n: string) => Number(values![names!.indexOf(n)]);
  return { in: at("InDatagrams"), rcvbuf: at("RcvbufErrors") };
}

/**
 * Gbit/s the receiver got, and the share of datagrams its socket dropped (buffer full: the
 * receiving process did not keep up; 0 for TCP).
 */
function iperf(clientNs: string, serverNs: string, dst: string, args: string[]): { gbps: number; drops: number } {
  const before = udpCounters(serverNs);
  const gbps = iperfOnce(clientNs, dst, args);
  const after = udpCounters(serverNs);
  const dropped = after.rcvbuf - before.rcvbuf;
  const total = dropped + after.in - before.in;
  return { gbps, drops: total > 0 ? dropped / total : 0 };
}

function iperfOnce(clientNs: string, dst: string, args: string[]): number {
  for (let attempt = 0; ; attempt++) {
    const r = sh(inNs(clientNs, ["iperf3", "-J", "-c", dst, "-p", String(PORT), "-t", String(DUR), ...args]), { allowFail: true });
    const j = r.code === 0 ? JSON.parse(r.out) : undefined;
    if (j && !j.error) {
      const e = j.end;
      const bps = e.sum_received?.bits_per_second ?? e.sum.bits_per_second * (1 - (e.sum.lost_percent ?? 0) / 100);
      return bps / 1e9;
    }
    // The server may still be finishing the last test: once more.
    if (attempt > 1) throw new Error(`cannot run iperf3 ${args.join(" ")} to ${dst}: ${j?.error ?? r.out.slice(0, 300)}${r.err}`);
    Bun.sleepSync(300);
  }
}

/** A lab of two nodes in this mode, one backend pod per node behind its own Service, an iperf3 server in each. */
function setUp(mode: string): Pair[] {
  log(`${mode}: lab ${LAB}`);
  lab("up", "-q", "--nodes", "2", "--pods-per-node", "1", "--mode", mode);
  labUp = true;
  lab("pod", "add", "node1", "same", "--labels", "bench=same");
  lab("pod", "add", "node2", "cross", "--labels", "bench=cross");
  const ports = `tcp=${PORT}:${PORT}/TCP,udp=${PORT}:${PORT}/UDP`;
  for (const which of ["same", "cross"]) lab("service", "add", `default/${which}`, "--selector", `bench=${which}`, "--port", ports, "-q");
  const st = JSON.parse(lab("status", "--json").out);
  const pod = (node: string, name: string) => st.pods.find((p: { node: string; name: string }) => p.node === node && p.name === name);
  for (const [node, name] of [["node1", "same"], ["node2", "cross"]] as const) {
    servers.push(Bun.spawn(inNs(pod(node, name).namespace, ["iperf3", "-s", "-p", String(PORT)]), { stdout: "ignore", stderr: "ignore" }));
  }
  Bun.sleepSync(500);
  const svc = (name: string) => st.services.find((s: { name: string }) => s.name === name).clusterIPs[0] as string;
  const client = pod("node1", "pod1").namespace as string;
  return [
    { mode, where: "same node", clientNs: client, serverNs: pod("node1", "same").namespace, direct: pod("node1", "same").ips[0], service: svc("same") },
    { mode, where: "cross node", clientNs: client, serverNs: pod("node2", "cross").namespace, direct: pod("node2", "cross").ips[0], service: svc("cross") },
  ];
}

interface Row {
  mode: string;
  where: string;
  test: string;
  direct: number[];
  service: number[];
  ratios: number[];
  /** Share of datagrams the receiver's socket dropped, per round. */
  dropsDirect: number[];
  dropsService: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function measure(pairs: Pair[]): Row[] {
  const rows: Row[] = pairs.flatMap((p) => TESTS.map((t) => ({ mode: p.mode, where: p.where, test: t.label, direct: [], service: [], ratios: [], dropsDirect: [], dropsService: [] })));
  for (let round = 0; round < ROUNDS; round++) {
    log(`${pairs[0]!.mode}: round ${round + 1}/${ROUNDS} (load ${loadavg()[0]!.toFixed(1)})`);
    let i = 0;
    for (const p of pairs) {
      for (const t of TESTS) {
        const row = rows[i++]!;
        // Direct and Service alternate, which goes first flipping each round.
        const order = round % 2 ? (["service", "direct"] as const) : (["direct", "service"] as const);
        const got: Record<string, { gbps: number; drops: number }> = {};
        for (const which of order) got[which] = iperf(p.clientNs, p.serverNs, which === "direct" ? p.direct : p.service, t.args);
        row.direct.push(got.direct!.gbps);
        row.service.push(got.service!.gbps);
        row.ratios.push(got.service!.gbps / got.direct!.gbps);
        row.dropsDirect.push(got.direct!.drops);
        row.dropsService.push(got.service!.drops);
      }
    }
  }
  return rows;
}

function table(rows: Row[]): string {
  const f = (x: number) => x.toFixed(2);
  const range = (xs: number[]) => `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
  const lines = [
    "| mode | path | test | direct pod → pod, Gbit/s | pod → Service, Gbit/s | Service / direct (median of per-round ratios) | ≥ 0.95 | datagrams the receiver's socket dropped, direct / Service (median) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.mode} | ${r.where} | ${r.test} | ${range(r.direct)} | ${range(r.service)} | **${f(median(r.ratios))}** (${f(Math.min(...r.ratios))}–${f(Math.max(...r.ratios))}) | ${median(r.ratios) >= 0.95 ? "yes" : "no"} | ${r.test.startsWith("UDP") ? `${(median(r.dropsDirect) * 100).toFixed(0)} % / ${(median(r.dropsService) * 100).toFixed(0)} %` : "-"} |`),
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  if (!existsSync(BIN)) throw new Error(`no ${BIN}: run make build first`);
  if (sh(["sh", "-c", "command -v iperf3"], { allowFail: true }).code !== 0) throw new Error("iperf3 is not installed (apt-get install -y iperf3)");
  const rows: Row[] = [];
  const loadBefore = loadavg()[0]!;
  const t0 = performance.now();
  for (const mode of v.modes!.split(",")) {
    try {
      rows.push(...measure(setUp(mode)));
    } finally {
      cleanup();
    }
  }
  const ipf = sh(["iperf3", "--version"]).out.split("\n")[0]!.split(" ").slice(0, 2).join(" ");
  const section = [
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${cpus().length} CPUs, load ${loadBefore.toFixed(1)} before / ${loadavg()[0]!.toFixed(1)} after, ${ROUNDS} rounds of ${DUR} s per test, ${ipf}, ${((performance.now() - t0) / 1000).toFixed(0)} s in all.`,
    "Values: median of the rounds (min–max). Each Service figure is taken seconds from its direct baseline (same client, same backend, alternating order), and the ratio is per round.",
    "",
    table(rows),
    "",
  ].join("\n");
  console.log(section);
  if (v.json) console.log(JSON.stringify(rows));
  if (!v["no-write"]) {
    const file = `${ROOT}/docs/benchmarks.md`;
    const begin = "<!-- service-throughput:begin (written by bench/service-throughput.ts) -->";
    const end = "<!-- service-throughput:end -->";
    const doc = readFileSync(file, "utf8");
    const block = `${begin}\n${section}${end}`;
    const i = doc.indexOf(begin), j = doc.indexOf(end);
    writeFileSync(file, i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n## Pod to Service throughput (\`bench/service-throughput.ts\`)\n\n${block}\n`);
    log("wrote docs/benchmarks.md (pod to Service throughput)");
  }
}

main().catch((e) => {
  cleanup();
  console.error(`[service-throughput] ${(e as Error).message}`);
  process.exit(1);
});
