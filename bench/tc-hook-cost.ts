// What a tc hook on a pod's host end costs a packet that takes the stack, alone: a client and a
// server namespace, each behind a veth pair into a third namespace that routes between them
// (a pod, the node, a pod), and TCP request/response between the two with
//   none    no program on the node's two veth ends (the baseline),
//   clsact  a program that only returns (TC_ACT_UNSPEC: "not mine", the fast path's verdict for
//           the stack) on the clsact ingress of both, as a
//           cls_bpf direct-action filter (how the fast path attaches its pod program),
//   tcx     the same program attached to both with tcx (BPF_PROG_ATTACH, BPF_TCX_INGRESS:
//           kernel 6.6+, no qdisc and no classifier in the way).
// A round measures each in turn (the order flips every round) on the same namespaces, the
// programs attached and detached between measurements; ratios are per round against none,
// then the median. The CPUs are kept busy (bench/busy-cpus.ts) unless --idle-cpus: on this VM
// an idle vCPU's wake-up makes single runs bimodal (~9 µs or ~60 µs).
// Run as root: node_modules/.bin/bun bench/tc-hook-cost.ts [--rounds 15] [--count 4000] [--idle-cpus] [--json]
// The namespaces (<id>a, <id>h, <id>b) and the server are removed at the end, also on failure or Ctrl-C.
import "./help.ts";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Netlink, withNetns } from "../src/kernel/index.ts";
import { Asm, PROG_TYPE, R, closeBpfFd, progLoad, tcxAttach, tcxDetach } from "../src/kernel/bpf/index.ts";
import { startBusyCpus, stopBusyCpus } from "./busy-cpus.ts";

const { values: v } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    rounds: { type: "string", default: "15" },
    count: { type: "string", default: "4000" },
    "idle-cpus": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const ROUNDS = Number(v.rounds);
const COUNT = Number(v.count);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`cannot use --rounds "${v.rounds}": must be a positive integer`);
if (!Number.isInteger(COUNT) || COUNT < 100) throw new Error(`cannot use --count "${v.count}": must be an integer of at least 100`);
const BIN = resolve(process.env.MNCNI_BIN ?? `${import.meta.dir}/../dist/mncni`);
const ID = `hk${process.pid.toString(36)}`.slice(0, 8);
const [A, H, B] = [`${ID}a`, `${ID}h`, `${ID}b`];
const PORT = 7878;
const MODES = ["none", "clsact", "tcx"] as const;
type Mode = (typeof MODES)[number];

function sh(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  if (p.exitCode !== 0) throw new Error(`cannot run "${argv.join(" ")}": ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}
let server: Bun.Subprocess | undefined;
let progFd: number | undefined;
const namespaces: string[] = [];
function cleanup(): void {
  stopBusyCpus();
  if (server?.exitCode === null) server.kill("SIGTERM");
  if (progFd !== undefined) closeBpfFd(progFd);
  progFd = undefined;
  for (const n of namespaces.splice(0)) Bun.spawnSync(["ip", "netns", "del", n]);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => (cleanup(), process.exit(130)));

function setUp(): number[] {
  for (const n of [A, H, B]) {
    sh(["ip", "netns", "add", n]);
    namespaces.push(n);
  }
  const ip = (ns: string, ...args: string[]) => sh(["ip", "-n", ns, ...args]);
  for (const [end, pod, net] of [["ha", A, "10.99.1"], ["hb", B, "10.99.2"]] as const) {
    ip(H, "link", "add", end, "type", "veth", "peer", "name", "eth0", "netns", pod);
    ip(H, "addr", "add", `${net}.1/24`, "dev", end);
    ip(H, "link", "set", end, "up");
    ip(pod, "addr", "add", `${net}.2/24`, "dev", "eth0");
    ip(pod, "link", "set", "eth0", "up");
    ip(pod, "link", "set", "lo", "up");
    ip(pod, "route", "add", "default", "via", `${net}.1`);
  }
  sh(["ip", "netns", "exec", H, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  const nl = Netlink.open(`/run/netns/${H}`);
  try {
    return nl.links().filter((l) => l.name === "ha" || l.name === "hb").map((l) => l.index);
  } finally {
    nl.close();
  }
}

function attach(mode: Mode, devices: number[], on: boolean): void {
  if (mode === "none") return;
  withNetns(`/run/netns/${H}`, () => {
    const nl = Netlink.open(`/run/netns/${H}`);
    try {
      for (const index of devices) {
        if (mode === "tcx") (on ? tcxAttach : tcxDetach)(index, progFd!);
        else if (on) {
          nl.addClsact(index);
          nl.addBpfFilter({ index, progFd: progFd!, name: "bench_empty" });
        } else nl.delQdisc(index, 0xfffffff1);
      }
    } finally {
      nl.close();
    }
  });
}

const rrP50 = (): number => JSON.parse(sh(["ip", "netns", "exec", A, BIN, "lab", "_rr", `10.99.2.2:${PORT}`, "--count", String(COUNT)])).p50;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

try {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  const devices = setUp();
  progFd = progLoad({ type: PROG_TYPE.SCHED_CLS, insns: new Asm().mov(R.r0, -1).exit().assemble(), license: "GPL", name: "bench_empty" });
  server = Bun.spawn([BIN, "lab", "_rr", "--serve", "--port", String(PORT), "--netns", B], { stdout: "ignore", stderr: "inherit" });
  const deadline = Date.now() + 20_000;
  while (Bun.spawnSync(["ip", "netns", "exec", A, BIN, "lab", "_rr", `10.99.2.2:${PORT}`, "--count", "5"]).exitCode !== 0) {
    if (Date.now() > deadline) throw new Error("the request/response server does not answer");
    Bun.sleepSync(200);
  }
  if (!v["idle-cpus"]) startBusyCpus();
  const samples: Record<Mode, number[]> = { none: [], clsact: [], tcx: [] };
  const loads: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    loads.push(loadavg()[0]!);
    for (const m of round % 2 ? [...MODES].reverse() : MODES) {
      attach(m, devices, true);
      try {
        samples[m].push(rrP50());
      } finally {
        attach(m, devices, false);
      }
    }
    console.error(`[tc-hook-cost] round ${round + 1}/${ROUNDS}: ${MODES.map((m) => `${m} ${samples[m].at(-1)!.toFixed(1)} µs`).join(", ")}`);
  }
  const rows = MODES.map((m) => {
    const ratios = samples[m].map((x, i) => x / samples.none[i]!);
    return { mode: m, p50: median(samples[m]), ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), extraUs: median(samples[m].map((x, i) => x - samples.none[i]!)) };
  });
  if (v.json) console.log(JSON.stringify({ measured: new Date().toISOString(), rounds: ROUNDS, count: COUNT, busyCpus: !v["idle-cpus"], loads, rows, samples }));
  else {
    const kernel = sh(["uname", "-r"]).trim();
    console.log(`Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${cpus().length} CPUs, kernel ${kernel}; ${ROUNDS} rounds of ${COUNT} round trips of 1 byte (\`mncni lab _rr\`) per attachment, ${v["idle-cpus"] ? "CPUs left to idle" : "CPUs kept out of idle by a nice-19 spinner each"}; load average (1 min) ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}.\n`);
    console.log("| program on the node's two veth ends | RR p50 µs | ratio to none (per round: median, min–max) | extra µs per round trip |");
    console.log("|---|---|---|---|");
    for (const r of rows) console.log(`| ${r.mode} | ${r.p50.toFixed(1)} | ${r.ratio.toFixed(3)} (${r.min.toFixed(2)}–${r.max.toFixed(2)}) | ${r.extraUs.toFixed(2)} |`);
  }
} finally {
  cleanup();
}
