// Benchmark: per-pod anti-spoofing, attach + detach, through src/plugin/antispoof.ts
// (nftables sets over nfnetlink) vs. the previous implementation (a chain per pod written
// with `nft -f -` on every ADD and DEL, reproduced below as the baseline), same run, same
// node. Also times the one-time creation of the table. Run as root:
// `bun bench/antispoof.ts [N] [OTHER_PODS]`. Works in a throwaway namespace, removed at the end.
//
// In-process numbers leave out one cost: closing a NETLINK_NETFILTER socket waits until the
// kernel has freed what earlier transactions deleted (an RCU grace period), which the plugin
// leaves to process exit. So with MNCNI_BINS="label=/path/mncni,..." it also times whole
// CNI ADD and DEL calls of those executables, antiSpoofing on and off, as a runtime sees them.
import "./help.ts";
import { spawnSync } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { antiSpoofFor, type GuardedPod } from "../src/plugin/antispoof.ts";
import { MODES } from "../src/plugin/modes.ts";

const INSIDE = "--inside";

function sh(argv: string[], stdin?: string): void {
  const p = spawnSync(argv, { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.join(" ")}: ${p.stderr.toString()}`);
}

const pod = (i: number): GuardedPod => ({
  hostIfname: `mncb${i}`,
  mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
  ips: [`10.${100 + (i >> 8)}.${i & 255}.2`, `fd00:77::${i.toString(16)}`],
});

/** The pre-sets implementation: per-pod chain + verdict map, one `nft -f -` per call. */
function legacy(family: string) {
  const t = `${family} mncni-antispoof-legacy`;
  const header = (chain: string) => `table ${t} {\n  map pods {\n    type ifname : verdict\n  }\n  chain ${chain} {\n  }\n}\n`;
  const rules = (p: GuardedPod) => {
    const [v4, v6] = p.ips;
    return [
      `ether saddr != ${p.mac} drop`, "ether type vlan drop", `ether type arp arp saddr ether != ${p.mac} drop`,
      `ether type arp arp saddr ip != { 0.0.0.0, ${v4} } drop`, `ether type ip ip saddr != { ${v4} } drop`,
      `ether type ip6 ip6 saddr != { ::, fe80::/10, ${v6} } drop`,
    ];
  };
  return {
    attach(p: GuardedPod) {
      sh(["nft", "-f", "-"],
        header(p.hostIfname) +
        `table ${t} {\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n  }\n}\n` +
        `flush chain ${t} prerouting\nadd rule ${t} prerouting iifname vmap @pods\nflush chain ${t} ${p.hostIfname}\n` +
        rules(p).map((r) => `add rule ${t} ${p.hostIfname} ${r}\n`).join("") +
        `add element ${t} pods { "${p.hostIfname}" : jump ${p.hostIfname} }\n`);
    },
    detach(name: string) {
      sh(["nft", "-f", "-"],
        header(name) + `add element ${t} pods { "${name}" : jump ${name} }\ndelete element ${t} pods { "${name}" }\ndelete chain ${t} ${name}\n`);
    },
  };
}

interface Stats { p50: number; p95: number; mean: number }

function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
  return { p50: q(0.5), p95: q(0.95), mean: xs.reduce((a, b) => a + b, 0) / xs.length };
}

function time(fn: () => void): number {
  const t0 = Bun.nanoseconds();
  fn();
  return (Bun.nanoseconds() - t0) / 1e6;
}

function measure(impl: { attach(p: GuardedPod): void; detach(n: string): void }, n: number, base: number) {
  const attach: number[] = [];
  const detach: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = pod(base + i);
    attach.push(time(() => impl.attach(p)));
    detach.push(time(() => impl.detach(p.hostIfname)));
  }
  return { attach: stats(attach), detach: stats(detach) };
}

function inside(n: number, others: number): void {
  const guard = antiSpoofFor(MODES.bridge.antiSpoof);
  const old = legacy("bridge");
  const first = time(() => guard.attach(pod(0))); // creates the table with nft, once per node
  guard.detach(pod(0).hostIfname);
  // Other pods on the node: the sets (and the legacy table's chains) are not empty.
  for (let i = 1; i <= others; i++) guard.attach(pod(i));
  for (let i = 1; i <= Math.min(others, 30); i++) old.attach(pod(i));
  const lib = measure(guard, n, 1000);
  const cli = measure(old, Math.min(n, 30), 1000);
  const f = (x: number) => (x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(2)} ms`);
  const row = (name: string, s: Stats) => `| ${name.padEnd(34)} | ${f(s.p50).padStart(9)} | ${f(s.p95).padStart(9)} | ${f(s.mean).padStart(9)} |`;
  console.log(`anti-spoofing per pod, bridge mode, ${others} other pods on the node (lib n=${n}, nft CLI n=${Math.min(n, 30)})`);
  console.log("(new: the socket's release, an RCU grace period after a delete, is left to process exit: see below)\n");
  console.log(`| ${"".padEnd(34)} | ${"p50".padStart(9)} | ${"p95".padStart(9)} | ${"mean".padStart(9)} |`);
  console.log(`|${"-".repeat(36)}|${"-".repeat(11)}|${"-".repeat(11)}|${"-".repeat(11)}|`);
  console.log(row("attach, nfnetlink sets (new)", lib.attach));
  console.log(row("detach, nfnetlink sets (new)", lib.detach));
  console.log(row("attach, nft -f per-pod chain (old)", cli.attach));
  console.log(row("detach, nft -f per-pod chain (old)", cli.detach));
  console.log(`\nattach+detach p50: new ${f(lib.attach.p50 + lib.detach.p50)}, old ${f(cli.attach.p50 + cli.detach.p50)} ` +
    `(${((cli.attach.p50 + cli.detach.p50) / (lib.attach.p50 + lib.detach.p50)).toFixed(0)}x)`);
  console.log(`first attach on the node (creates the table with nft): ${f(first)}`);
  const bins = (process.env.MNCNI_BINS ?? "").split(",").filter(Boolean).map((b) => b.split("=") as [string, string]);
  if (bins.length) endToEnd(bins, Math.min(n, 30), f);
}

/**
 * Whole CNI ADD and DEL calls, each pod in a fresh namespace, bridge mode. The variants take
 * turns pod by pod, so load from anything else on the machine hits them alike.
 */
function endToEnd(bins: [string, string][], n: number, f: (ms: number) => string): void {
  const dir = mkdtempSync(join(tmpdir(), "mnnb-"));
  const pods = Array.from({ length: n }, (_, i) => `mnnb-${process.pid.toString(36)}-p${i}`);
  const variants = bins.flatMap(([label, bin]) => [true, false].map((antiSpoofing) => ({ label, bin, antiSpoofing, add: [] as number[], del: [] as number[] })));
  const rows: string[] = [];
  try {
    const calls = variants.map((v, i) => {
      const name = `bench${i}`;
      const conf = JSON.stringify({
        cniVersion: "1.1.0", name, type: "mncni", mode: "bridge", antiSpoofing: v.antiSpoofing,
        ipam: { type: "mncni-ipam", ranges: [[{ subnet: `10.${200 + i}.0.0/24` }], [{ subnet: `fd00:${i + 1}::/64` }]], dataDir: join(dir, name) },
        logFile: join(dir, "cni.log"),
      });
      return (command: string, pod: string) => {
        const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin", CNI_COMMAND: command, CNI_CONTAINERID: pod, CNI_NETNS: `/run/netns/${pod}`, CNI_IFNAME: `e${i}`, CNI_PATH: dirname(v.bin) };
        const t0 = Bun.nanoseconds();
        const p = spawnSync([v.bin], { env, stdin: Buffer.from(conf), stdout: "pipe", stderr: "pipe" });
        const ms = (Bun.nanoseconds() - t0) / 1e6;
        if (p.exitCode !== 0) throw new Error(`${v.label} ${command} failed: ${p.stdout.toString()}${p.stderr.toString()}`);
        return ms;
      };
    });
    for (const p of pods) sh(["ip", "netns", "add", p]);
    calls.forEach((call) => (call("ADD", pods[0]!), call("DEL", pods[0]!))); // warm-up: the table, the bridge
    for (const p of pods) calls.forEach((call, i) => variants[i]!.add.push(call("ADD", p)));
    for (const p of pods) calls.forEach((call, i) => variants[i]!.del.push(call("DEL", p)));
    for (const v of variants) {
      const [a, d] = [stats(v.add), stats(v.del)];
      rows.push(`| ${`${v.label}, antiSpoofing ${v.antiSpoofing ? "on" : "off"}`.padEnd(40)} | ${f(a.p50).padStart(9)} | ${f(a.p95).padStart(9)} | ${f(d.p50).padStart(9)} | ${f(d.p95).padStart(9)} |`);
    }
  } finally {
    for (const p of pods) sh(["ip", "netns", "del", p]);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nwhole CNI calls through the executable, bridge mode, n=${n} pods each (ADD all, then DEL all)\n`);
  console.log(`| ${"".padEnd(40)} | ${"ADD p50".padStart(9)} | ${"ADD p95".padStart(9)} | ${"DEL p50".padStart(9)} | ${"DEL p95".padStart(9)} |`);
  console.log(`|${"-".repeat(42)}|${"-".repeat(11)}|${"-".repeat(11)}|${"-".repeat(11)}|${"-".repeat(11)}|`);
  for (const r of rows) console.log(r);
}

// The measuring half runs inside the node namespace, as the plugin would.
if (process.argv[2] !== INSIDE) {
  const ns = `mnnb-${process.pid.toString(36)}`;
  sh(["ip", "netns", "add", ns]);
  try {
    const p = spawnSync(["ip", "netns", "exec", ns, process.execPath, import.meta.path, INSIDE, ...process.argv.slice(2)], { stdout: "inherit", stderr: "inherit" });
    process.exitCode = p.exitCode ?? 1;
  } finally {
    sh(["ip", "netns", "del", ns]);
  }
} else {
  inside(Number(process.argv[3] ?? 200), Number(process.argv[4] ?? 100));
}
