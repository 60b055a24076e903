// Overlay benchmark: single-stream TCP throughput (iperf3, pod to pod across nodes) for
// host-gw, vxlan and auto (within a segment: direct; across segments: the tunnel), and node to
// node over the same underlay, measured in interleaved rounds in one run so that load from
// other users of the machine hits every kind alike; ratios are what to compare.
// Run as root after `make build`: bun bench/overlay.ts [--rounds 5] [--seconds 3]
// Targets (issue 14): VXLAN >= 80 % of host-gw, host-gw >= 90 % of node-to-node.
import "./help.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({ args: Bun.argv.slice(2), options: { rounds: { type: "string", default: "5" }, seconds: { type: "string", default: "3" } } });
const ROUNDS = Number(v.rounds);
const SECONDS = Number(v.seconds);
const bin = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../dist/mncni");
if (!existsSync(bin)) throw new Error(`cannot run the overlay benchmark: no ${bin} (run make build)`);

const LABS = { hostgw: { name: "mnbov-h", args: ["--routing", "host-gw", "--nodes", "2"] }, vxlan: { name: "mnbov-v", args: ["--routing", "vxlan", "--segments", "2", "--nodes", "3"] }, auto: { name: "mnbov-a", args: ["--routing", "auto", "--segments", "2", "--nodes", "3"] } };

function sh(argv: string[], allowFail = false): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0 && !allowFail) throw new Error(`cannot run ${argv.join(" ")}: ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

/** A pair to measure: server namespace and address, client namespace. */
interface Kind { label: string; server: string; client: string; to: string }

const pod = (lab: string, node: number) => `${lab}-node${node}-pod1`;
const podIP = (lab: string, node: number) => JSON.parse(sh(["ip", "-n", pod(lab, node), "-j", "-4", "addr", "show", "dev", "eth0"]))[0].addr_info[0].local as string;

function measure(k: Kind): number {
  const srv = Bun.spawn(["ip", "netns", "exec", k.server, "iperf3", "-s", "-1", "-p", "5299"], { stdout: "ignore", stderr: "ignore" });
  try {
    for (let i = 0; i < 50 && !sh(["ip", "netns", "exec", k.server, "ss", "-Htln", "sport = :5299"], true).trim(); i++) Bun.sleepSync(20);
    const out = JSON.parse(sh(["ip", "netns", "exec", k.client, "iperf3", "-c", k.to, "-p", "5299", "-t", String(SECONDS), "-J"]));
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    srv.kill("SIGKILL");
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  for (const l of Object.values(LABS)) {
    sh([bin, "lab", "down", "--name", l.name, "-q"], true);
    sh([bin, "lab", "up", "--name", l.name, "-q", "--pods-per-node", "1", "--wiring", "agent", ...l.args]);
  }
  // vxlan and auto labs: node1 and node3 share segment 0, node2 is on segment 1.
  const kinds: Kind[] = [
    { label: "node to node (underlay)", server: `${LABS.hostgw.name}-node2`, client: `${LABS.hostgw.name}-node1`, to: "10.224.0.12" },
    { label: "host-gw pod to pod", server: pod(LABS.hostgw.name, 2), client: pod(LABS.hostgw.name, 1), to: podIP(LABS.hostgw.name, 2) },
    { label: "vxlan pod to pod, same segment", server: pod(LABS.vxlan.name, 3), client: pod(LABS.vxlan.name, 1), to: podIP(LABS.vxlan.name, 3) },
    { label: "vxlan pod to pod, across segments", server: pod(LABS.vxlan.name, 2), client: pod(LABS.vxlan.name, 1), to: podIP(LABS.vxlan.name, 2) },
    { label: "auto pod to pod, same segment (direct)", server: pod(LABS.auto.name, 3), client: pod(LABS.auto.name, 1), to: podIP(LABS.auto.name, 3) },
    { label: "auto pod to pod, across segments (tunnel)", server: pod(LABS.auto.name, 2), client: pod(LABS.auto.name, 1), to: podIP(LABS.auto.name, 2) },
  ];
  const got = new Map<string, number[]>(kinds.map((k) => [k.label, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of kinds) got.get(k.label)!.push(measure(k));
    console.error(`round ${r + 1}/${ROUNDS} done`);
  }
  const m = (label: string) => median(got.get(label)!);
  const hostgw = m("host-gw pod to pod");
  console.log(`| path | median Gbit/s (${ROUNDS} rounds × ${SECONDS} s) | min – max | vs host-gw | vs node to node |`);
  console.log("|---|---|---|---|---|");
  for (const k of kinds) {
    const xs = got.get(k.label)!;
    console.log(`| ${k.label} | ${m(k.label).toFixed(2)} | ${Math.min(...xs).toFixed(2)} – ${Math.max(...xs).toFixed(2)} | ${(m(k.label) / hostgw * 100).toFixed(0)} % | ${(m(k.label) / m("node to node (underlay)") * 100).toFixed(0)} % |`);
  }
  const vx = m("vxlan pod to pod, across segments") / hostgw;
  const hg = hostgw / m("node to node (underlay)");
  console.log(`\ntargets: VXLAN ≥ 80 % of host-gw: ${(vx * 100).toFixed(0)} % ${vx >= 0.8 ? "met" : "NOT met"}; host-gw ≥ 90 % of node to node: ${(hg * 100).toFixed(0)} % ${hg >= 0.9 ? "met" : "NOT met"}`);
} finally {
  for (const l of Object.values(LABS)) sh([bin, "lab", "down", "--name", l.name, "-q"], true);
}
