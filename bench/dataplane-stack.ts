// The eBPF fast path's "no change for flows that take the stack": throughput and
// request/response latency of the flows the fast path hands to the stack, in a lab with the
// fast path on against the same flows in a lab with it off (the baseline), both up at once and
// measured in the same rounds, seconds apart (which lab goes first flips every round):
//   policy pair   node1/pod1 -> node1/pod2, which a NetworkPolicy selects (ingress allowed)
//   Service       node1/pod1 -> a ClusterIP whose one backend is node2/pod1 (DNAT, conntrack)
//   egress        node1/pod1 -> the lab's external host (masquerade)
//   plain pair    node1/pod1 -> node1/pod3, nothing selects either: the control, the fast
//                 path's own gain, which shows it was on
// Ratios are fast path on / off, per round, then the median over the rounds (single runs are
// bimodal here). Two labs of 2 nodes, host-gw, bridge mode (or --mode routed).
// With --both-off the first lab has the fast path off too: the ratios then say what the bench
// reads between two like labs (its own bias), against which the real ratios are read. With
// --hook-only the first lab has it off, and a program that only returns on every pod's host end
// (attached as the fast path's: tcx where the kernel has it): what the hook costs a packet,
// without the fast path's work. --busy-cpus keeps the CPUs out of idle during the
// request/response measurements (bench/busy-cpus.ts).
// Run as root: node_modules/.bin/bun bench/dataplane-stack.ts [--rounds 9] [--duration 2] [--mode bridge]
//   [--both-off | --hook-only] [--busy-cpus] [--json]. The labs (<id>on, <id>off) and the servers are removed at the end, also on failure or Ctrl-C.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { LabStatus } from "../src/lab/status.ts";
import { EXTERNAL } from "../src/lab/topology.ts";
import { Netlink } from "../src/kernel/index.ts";
import { Asm, BpfError, PROG_TYPE, R, closeBpfFd, progLoad, tcxAttach } from "../src/kernel/bpf/index.ts";
import { stopBusyCpus, withBusyCpus } from "./busy-cpus.ts";
import { inNs, sh } from "./shell.ts";

const { values: v } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    rounds: { type: "string", default: "9" },
    duration: { type: "string", default: "2" },
    mode: { type: "string", default: "bridge" },
    "both-off": { type: "boolean", default: false },
    "hook-only": { type: "boolean", default: false },
    "busy-cpus": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (v.help) {
  console.log("usage: bun bench/dataplane-stack.ts [--rounds 9] [--duration 2] [--mode bridge|routed] [--both-off | --hook-only] [--busy-cpus] [--json]\n  --both-off: the first lab with the fast path off too (what the bench reads between two like labs: its own bias)\n  --hook-only: the first lab with the fast path off and an empty program (returns TC_ACT_UNSPEC, the fast path's verdict for the stack) on every pod's host end, attached as the fast path's (tcx where the kernel has it): what the hook alone costs\n  --busy-cpus: a nice-19 spinner per CPU during the request/response measurements (bench/busy-cpus.ts: removes the idle vCPU's ~50 µs wake-up, which makes single runs bimodal)");
  process.exit(0);
}
const ROUNDS = Number(v.rounds);
const DUR = Number(v.duration);
const MODE = v.mode!;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`cannot use --rounds "${v.rounds}": must be a positive integer`);
if (!(DUR > 0)) throw new Error(`cannot use --duration "${v.duration}": must be a positive number of seconds`);
if (MODE !== "bridge" && MODE !== "routed") throw new Error(`cannot use --mode "${MODE}": bridge or routed`);
const ROOT = resolve(import.meta.dir, "..");
const BIN = resolve(process.env.MNCNI_BIN ?? `${ROOT}/dist/mncni`);
const ID = `ds${process.pid.toString(36)}`.slice(0, 8);
const IPERF_PORT = 5201;
const RR_PORT = 7878;
const RR_COUNT = Math.max(500, DUR * 1000);
const log = (s: string) => console.error(`[dataplane-stack] ${s}`);

const labCmd = (name: string, args: string[], o: { allowFail?: boolean } = {}) => sh([BIN, "lab", ...args, "--name", name], o);
const started: Bun.Subprocess[] = [];
const bpfFds: number[] = [];
const labs: string[] = [];
const dir = mkdtempSync(join(tmpdir(), `${ID}-`));

function cleanup(): void {
  stopBusyCpus();
  for (const fd of bpfFds.splice(0)) closeBpfFd(fd);
  for (const p of started) if (p.exitCode === null) p.kill("SIGTERM");
  for (const l of labs.splice(0)) sh([BIN, "lab", "down", "--name", l, "-q"], { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => (cleanup(), process.exit(130)));

/** Polls `ok` every 500 ms until it holds, failing after 120 s (the agents act on their own time). */
function waitFor(what: string, ok: () => boolean): void {
  const deadline = Date.now() + 120_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after 120 s`);
    Bun.sleepSync(500);
  }
}

const FLOWS = ["policy", "service", "egress", "plain"] as const;
type Flow = (typeof FLOWS)[number];
const FLOW_LABEL: Record<Flow, string> = {
  policy: "policy-selected pair (same node)",
  service: "pod to Service, backend on the other node",
  egress: "pod egress to the external host (masquerade)",
  plain: "control: plain pair (same node), no policy",
};
interface Target { client: string; server: string; dst: string }
interface Lab { name: string; fastPath: boolean; flows: Record<Flow, Target> }

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bench-selected, namespace: default}
spec:
  podSelector: {matchLabels: {bench: selected}}
  policyTypes: [Ingress]
  ingress: [{}]
`;

function setUpLab(name: string, fastPath: boolean): Lab {
  labs.push(name);
  sh([BIN, "lab", "down", "--name", name, "-q"], { allowFail: true });
  log(`lab ${name}: up (${MODE}, host-gw, fast path ${fastPath ? "on" : "off"})`);
  labCmd(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "3", "--mode", MODE, "--routing", "host-gw", "--fast-path", fastPath ? "on" : "off"]);
  labCmd(name, ["label", "pod", "default/node1-pod2", "bench=selected"]);
  labCmd(name, ["label", "pod", "default/node2-pod1", "bench=backend"]);
  const file = join(dir, `${name}-policy.yaml`);
  writeFileSync(file, POLICY);
  labCmd(name, ["apply", "-f", file]);
  labCmd(name, ["service", "add", "default/bench", "-q", "--selector", "bench=backend", "--port", `iperf=${IPERF_PORT}:${IPERF_PORT}/TCP,rr=${RR_PORT}:${RR_PORT}/TCP`]);
  const st = JSON.parse(labCmd(name, ["status", "--json"]).out) as LabStatus;
  const pod = (node: string, p: string) => st.pods.find((x) => x.node === node && x.name === p)!;
  const client = pod("node1", "pod1").namespace;
  const clusterIP = (st.services.find((s) => s.name === "bench") as { clusterIPs: string[] }).clusterIPs[0]!;
  const flows: Record<Flow, Target> = {
    policy: { client, server: pod("node1", "pod2").namespace, dst: pod("node1", "pod2").ips[0]! },
    service: { client, server: pod("node2", "pod1").namespace, dst: clusterIP },
    egress: { client, server: `${name}-ext`, dst: EXTERNAL.host },
    plain: { client, server: pod("node1", "pod3").namespace, dst: pod("node1", "pod3").ips[0]! },
  };
  return { name, fastPath, flows };
}

/** --hook-only: a program that only returns, on every pod's host end of the lab's nodes, attached as the fast path attaches its own (tcx where the kernel has it; they go with the lab). */
function hookOn(nl: Netlink, index: number, fd: number): void {
  try {
    nl.within(() => tcxAttach(index, fd));
  } catch (e) {
    if (!(e instanceof BpfError && e.code === "EINVAL")) throw e;
    nl.addClsact(index);
    nl.addBpfFilter({ index, progFd: fd, name: "bench_empty" });
  }
}

function emptyHooks(lab: string): void {
  const fd = progLoad({ type: PROG_TYPE.SCHED_CLS, insns: new Asm().mov(R.r0, -1).exit().assemble(), license: "GPL", name: "bench_empty" });
  bpfFds.push(fd);
  const st = JSON.parse(labCmd(lab, ["status", "--json"]).out) as LabStatus;
  for (const n of st.nodes) {
    const nl = Netlink.open(`/run/netns/${n.namespace}`);
    try {
      for (const l of nl.links().filter((x) => x.kind === "veth" && x.name !== "eth0")) hookOn(nl, l.index, fd);
    } finally {
      nl.close();
    }
  }
}

/** What `lab inspect` says of a pod's fast path: plain (in the map) or not. */
const plain = (lab: string, target: string) => JSON.parse(labCmd(lab, ["inspect", target, "--json"], { allowFail: true }).out || "{}").fastPath?.plain === true;

/** Until the lab is as the table says: the fast path's lab has the plain pods in its map and the selected one out. */
function settle(l: Lab): void {
  if (l.fastPath) {
    waitFor(`lab ${l.name}: node1/pod1 and node1/pod3 on the fast path`, () => plain(l.name, "node1/pod1") && plain(l.name, "node1/pod3"));
    waitFor(`lab ${l.name}: node1/pod2 (policy-selected) off the fast path`, () => {
      const r = JSON.parse(labCmd(l.name, ["inspect", "node1/pod2", "--json"], { allowFail: true }).out || "{}").fastPath;
      return r !== undefined && r.plain === false;
    });
  }
  // Every flow answers (the Service is programmed from its slice within an agent's pass); a
  // few round trips under timeout(1), as a connection to a Service not programmed yet would hang.
  const answers = (t: Target) => sh(["timeout", "5", ...inNs(t.client, [BIN, "lab", "_rr", `${t.dst}:${RR_PORT}`, "--count", "5"])], { allowFail: true }).code === 0;
  for (const f of FLOWS) waitFor(`lab ${l.name}: ${f} flow answers`, () => answers(l.flows[f]));
}

function iperf(t: Target): number {
  // The server may still be between two tests (busy): try again until a deadline, not a count
  // of tries, so that a loaded machine only makes the run slower.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = sh(inNs(t.client, ["iperf3", "-J", "--connect-timeout", "3000", "-c", t.dst, "-p", String(IPERF_PORT), "-t", String(DUR)]), { allowFail: true });
    const j = r.code === 0 ? JSON.parse(r.out) : undefined;
    if (j && !j.error) return j.end.sum_received.bits_per_second / 1e9;
    if (Date.now() > deadline) throw new Error(`cannot run iperf3 to ${t.dst}: ${j?.error ?? r.out.slice(0, 300)}${r.err}`);
    Bun.sleepSync(300);
  }
}

const rrP50 = (t: Target): number => JSON.parse(sh(inNs(t.client, [BIN, "lab", "_rr", `${t.dst}:${RR_PORT}`, "--count", String(RR_COUNT)])).out).p50;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Samples { gbps: number[]; rr: number[] }

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  if (!existsSync(BIN)) throw new Error(`no ${BIN}: run make build first`);
  if (sh(["sh", "-c", "command -v iperf3"], { allowFail: true }).code !== 0) throw new Error("iperf3 is not installed (apt-get install -y iperf3)");
  const t0 = performance.now();
  if (v["both-off"] && v["hook-only"]) throw new Error("--both-off and --hook-only: one or the other");
  const on = setUpLab(`${ID}on`, !v["both-off"] && !v["hook-only"]);
  if (v["hook-only"]) emptyHooks(on.name);
  const off = setUpLab(`${ID}off`, false);
  const servers = [...new Set([on, off].flatMap((l) => FLOWS.map((f) => l.flows[f].server)))];
  for (const s of servers) started.push(Bun.spawn(inNs(s, ["iperf3", "-s", "-p", String(IPERF_PORT)]), { stdout: "ignore", stderr: "ignore" }));
  started.push(Bun.spawn([BIN, "lab", "_rr", "--serve", "--port", String(RR_PORT), ...servers.flatMap((s) => ["--netns", s])], { stdout: "ignore", stderr: "inherit" }));
  for (const l of [on, off]) settle(l);
  const samples = new Map<string, Samples>();
  for (const l of [on, off]) for (const f of FLOWS) samples.set(`${l.name}/${f}`, { gbps: [], rr: [] });
  const loads: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    loads.push(loadavg()[0]!);
    log(`round ${round}/${ROUNDS} (load ${loads.at(-1)!.toFixed(1)})`);
    const order = round % 2 ? [on, off] : [off, on];
    for (const f of FLOWS) {
      for (const l of order) samples.get(`${l.name}/${f}`)!.gbps.push(iperf(l.flows[f]));
      withBusyCpus(v["busy-cpus"]!, () => {
        for (const l of order) samples.get(`${l.name}/${f}`)!.rr.push(rrP50(l.flows[f]));
      });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const rows = FLOWS.map((f) => {
    const a = samples.get(`${on.name}/${f}`)!, b = samples.get(`${off.name}/${f}`)!;
    const ratio = (m: keyof Samples) => {
      const rs = a[m].map((x, i) => x / b[m][i]!);
      return { med: median(rs), min: Math.min(...rs), max: Math.max(...rs) };
    };
    return { flow: f, label: FLOW_LABEL[f], on: { gbps: median(a.gbps), rr: median(a.rr) }, off: { gbps: median(b.gbps), rr: median(b.rr) }, gbpsRatio: ratio("gbps"), rrRatio: ratio("rr"), samples: { on: a, off: b } };
  });
  if (v.json) {
    console.log(JSON.stringify({ measured: new Date().toISOString(), mode: MODE, rounds: ROUNDS, duration: DUR, seconds, loads, rows }));
    return;
  }
  const f2 = (x: number) => x.toFixed(2);
  const r = (x: { med: number; min: number; max: number }) => `${f2(x.med)} (${f2(x.min)}–${f2(x.max)})`;
  const kernel = sh(["uname", "-r"]).out.trim();
  console.log(`Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${cpus().length} CPUs, kernel ${kernel}; ${MODE} mode, host-gw, two labs (${v["both-off"] ? "both with the fast path off: the bench's own bias; \"on\" is the first lab" : v["hook-only"] ? "both with the fast path off, the first (\"on\") with an empty program on every pod's host end" : "fast path on, fast path off"}) up at once; ` +
    `${ROUNDS} rounds, in each every flow on both labs (which lab first flips each round): TCP 1 stream ${DUR} s (iperf3), request/response ${RR_COUNT} round trips of 1 byte after 200 untimed ones (\`mncni lab _rr\`${v["busy-cpus"] ? ", CPUs kept out of idle by a nice-19 spinner each" : ""}); ` +
    `load average (1 min) during the rounds ${f2(Math.min(...loads))}–${f2(Math.max(...loads))}, median ${f2(median(loads))}; total ${seconds.toFixed(0)} s.\n`);
  console.log("| flow | TCP Gbit/s, fast path on | off | on/off (per round: median, min–max) | request/response p50 µs, on | off | on/off |");
  console.log("|---|---|---|---|---|---|---|");
  for (const x of rows) console.log(`| ${x.label} | ${f2(x.on.gbps)} | ${f2(x.off.gbps)} | ${r(x.gbpsRatio)} | ${x.on.rr.toFixed(1)} | ${x.off.rr.toFixed(1)} | ${r(x.rrRatio)} |`);
}

try {
  await main();
} finally {
  cleanup();
}
