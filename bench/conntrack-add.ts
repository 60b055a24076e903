// Benchmark: CNI ADD on a node namespace that tracks connections (#29), mncni against the Go
// reference bridge + host-local, and against the build before this change, in one run.
// Run as root:
//   node_modules/.bin/bun bench/conntrack-add.ts [--pods 40] [--entries 10000] [--before DIR] [--no-write]
// Every setup has its own node namespace with a ruleset that makes it track connections (a
// `ct state` match, as any node with kube-proxy or masquerade has); first it tracks 1
// connection, then `--entries` (loaded with `conntrack -R`, TCP ESTABLISHED to other
// addresses). A pod's ADD forgets the conntrack entries of its address, and finding them
// takes a walk of the whole conntrack table. Setups:
//   reference bridge + host-local (the baseline of every ratio)
//   mncni bridge + mncni-ipam, served via the native forwarder (`mncni serve` in the node
//     namespace, as the agent runs it) / plugin alone: this build and the one in --before
//     (default /work/baseline/dist-a31c2fb when present)
// Calls are interleaved (pod i by every setup before pod i+1), each started as
// `nsenter --net=NODE plugin` (process start included, the same for every setup); each pod is
// deleted right after its ADD round. Prints a markdown table of ADD p50 / p90 and ratios to
// the reference; writes it into docs/benchmarks.md (unless --no-write).
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";
import { arg, BenchHarness, helpOr, percentile, type PluginSetup, runPlugin, sh, writeBenchmarksBlock } from "./cni-harness.ts";

helpOr(`usage: bun bench/conntrack-add.ts [--pods N] [--entries N] [--before DIST] [--no-write]
  --pods N       pods per setup (40)
  --entries N    tracked connections of the busy condition (10000)
  --before DIST  the build to compare with (default /work/baseline/dist-a31c2fb when present)
  --no-write     print the table only (default: also into docs/benchmarks.md)
Runs as root; cleans up on Ctrl-C or SIGTERM.`);

const REF_DIR = "/usr/lib/cni";
const MNCNI = resolve(import.meta.dir, "../dist/mncni");

const PODS = Number(arg("pods") ?? 40);
const ENTRIES = Number(arg("entries") ?? 10_000);
const BEFORE = arg("before") ?? (existsSync("/work/baseline/dist-a31c2fb/mncni") ? "/work/baseline/dist-a31c2fb" : undefined);
const WRITE = !process.argv.includes("--no-write");

const h = new BenchHarness("mnk");
const { tag, tmp } = h;

interface Setup extends PluginSetup {
  /** ADD times per condition (tracked-entry count). */
  add: Map<number, number[]>;
}

let count = 0;

/** A setup in its own node namespace; `serve`: the mncni binary whose `serve` takes its calls. */
async function setup(label: string, o: { bin: string; cniPath: string; conf: (dir: string) => Record<string, unknown>; serve?: string }): Promise<Setup> {
  const id = `s${count++}`;
  const dir = `${tmp}/${id}`;
  mkdirSync(dir, { recursive: true });
  const node = h.netns(`${tag}-${id}`);
  // Conntrack runs in a namespace once a ruleset there needs it.
  sh(["ip", "netns", "exec", node, "nft", "add table inet mnkbench; add chain inet mnkbench pre { type filter hook prerouting priority 0; }; add rule inet mnkbench pre ct state new accept"]);
  const pods = Array.from({ length: PODS }, (_, i) => h.netns(`${tag}-${id}p${i}`));
  let conf: Record<string, unknown> = { cniVersion: "1.0.0", name: `bench${id}`, ...o.conf(dir) };
  if (o.serve) {
    const socket = `${dir}/cni.sock`;
    conf = { ...conf, agentSocket: socket };
    await h.serve(o.serve, node, socket, label);
  }
  return { label, bin: o.bin, cniPath: o.cniPath, conf, node, pods, add: new Map() };
}

async function call(s: Setup, command: "ADD" | "DEL", i: number): Promise<number> {
  return (await runPlugin({ label: s.label, node: s.node, bin: s.bin, cniPath: s.cniPath, conf: s.conf, command, containerId: `bench-${i}`, pod: s.pods[i]!, enter: "nsenter" })).ms;
}

/** Loads n conntrack entries into the node namespace in one `conntrack -R` (TCP, other addresses than the pods'). */
function track(node: string, from: number, n: number): void {
  const lines: string[] = [];
  for (let i = from; i < from + n; i++) {
    lines.push(`-I -p tcp -s 10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255} -d 10.200.0.1 --sport ${1024 + (i % 60000)} --dport 80 --state ESTABLISHED -t 3600 -u ASSURED`);
  }
  const file = `${tmp}/load-${node}.txt`;
  writeFileSync(file, lines.join("\n") + "\n");
  sh(["ip", "netns", "exec", node, "conntrack", "-R", file]);
}

const tracked = (node: string) => Number(sh(["ip", "netns", "exec", node, "cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).trim());

async function main(): Promise<void> {
  const ipam = (dir: string, subnet: string) => ({ ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: `${dir}/ipam` });
  const binDir = (name: string, core: string) => {
    // As the agent installs it: the native forwarder as `mncni`, `mncni-core` beside it (dist/).
    const d = `${tmp}/${name}`;
    mkdirSync(d);
    symlinkSync(resolve(dirname(core), "mncni-forward"), `${d}/mncni`);
    symlinkSync(core, `${d}/mncni-ipam`);
    return d;
  };
  const mncni = (dir: string) => ({ type: "mncni", mode: "bridge", bridge: "mnk0", logFile: `${dir}/cni.log`, ipam: { type: "mncni-ipam", ...ipam(dir, "10.244.1.0/24") } });
  const builds: [string, string][] = [["this build", MNCNI]];
  if (BEFORE) builds.push([`before (${BEFORE.split("/").pop()})`, resolve(BEFORE, "mncni")]);
  const setups: Setup[] = [
    await setup("reference bridge + host-local", { bin: `${REF_DIR}/bridge`, cniPath: REF_DIR, conf: (d) => ({ type: "bridge", bridge: "mnk0", isGateway: true, hairpinMode: true, ipam: { type: "host-local", ...ipam(d, "10.244.1.0/24") } }) }),
  ];
  for (const [name, core] of builds) {
    const fwd = binDir(`fwd-${setups.length}`, core);
    const alone = `${tmp}/alone-${setups.length}`;
    mkdirSync(alone);
    symlinkSync(core, `${alone}/mncni`);
    symlinkSync(core, `${alone}/mncni-ipam`);
    setups.push(await setup(`mncni served via the native forwarder, ${name}`, { bin: `${fwd}/mncni`, cniPath: fwd, conf: mncni, serve: core }));
    setups.push(await setup(`mncni plugin alone, ${name}`, { bin: `${alone}/mncni`, cniPath: alone, conf: mncni }));
  }
  const conditions = [1, ENTRIES];
  for (const n of conditions) {
    for (const s of setups) {
      track(s.node, n === 1 ? 0 : 1, n === 1 ? 1 : n - 1);
      const t = tracked(s.node);
      if (t < n) throw new Error(`${s.label}: the node tracks ${t} connections, not ${n}`);
      s.add.set(n, []);
    }
    // Warm-up (page cache, first server call), not counted.
    for (const s of setups) {
      await call(s, "ADD", 0);
      await call(s, "DEL", 0);
    }
    for (let i = 0; i < PODS; i++) {
      for (const s of setups) s.add.get(n)!.push(await call(s, "ADD", i));
      for (const s of setups) await call(s, "DEL", i);
    }
  }
  const ref = setups[0]!;
  const rows = setups.map((s) => {
    const cells = conditions.flatMap((n) => {
      const xs = s.add.get(n)!;
      const r = percentile(xs, 50) / percentile(ref.add.get(n)!, 50);
      return [`${percentile(xs, 50).toFixed(1)} / ${percentile(xs, 90).toFixed(1)}`, s === ref ? "1.00x" : `${r.toFixed(2)}x`];
    });
    return `| ${s.label} | ${cells.join(" | ")} |`;
  });
  const [one, many] = conditions;
  const table = [
    `${PODS} pods per setup and condition, IPv4, cniVersion 1.0.0, every call \`nsenter --net=NODE plugin\` (process start included), ${cpus().length} CPUs, load average ${sh(["cat", "/proc/loadavg"]).split(" ")[0]} at the end; conntrack table of ${sh(["cat", "/proc/sys/net/netfilter/nf_conntrack_buckets"]).trim()} buckets.`,
    "",
    `| setup | ADD ms p50 / p90, node tracks ${one} | vs reference | ADD ms p50 / p90, node tracks ${many!.toLocaleString("en")} | vs reference |`,
    "|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(table);
  if (WRITE) {
    writeBenchmarksBlock("conntrack-add", `<!-- conntrack-add:begin -->\n${table}\n<!-- conntrack-add:end -->`);
  }
}

await h.run(main);
