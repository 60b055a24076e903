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
import { spawnSync } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, resolve } from "node:path";

const REF_DIR = "/usr/lib/cni";
const MNCNI = resolve(import.meta.dir, "../dist/mncni");

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const PODS = Number(arg("pods") ?? 40);
const ENTRIES = Number(arg("entries") ?? 10_000);
const BEFORE = arg("before") ?? (existsSync("/work/baseline/dist-a31c2fb/mncni") ? "/work/baseline/dist-a31c2fb" : undefined);
const WRITE = !process.argv.includes("--no-write");

const tag = `mnk${process.pid.toString(36)}`;
const tmp = mkdtempSync(`/tmp/${tag}-bench-`);
const namespaces: string[] = [];
const servers: ReturnType<typeof Bun.spawn>[] = [];

function sh(argv: string[], stdin?: string): string {
  const p = spawnSync(argv, { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

function netns(name: string): string {
  sh(["ip", "netns", "add", name]);
  namespaces.push(name);
  sh(["ip", "-n", name, "link", "set", "lo", "up"]);
  return name;
}

function cleanup(): void {
  for (const p of servers.splice(0)) p.kill();
  for (const n of namespaces.splice(0)) spawnSync(["ip", "netns", "del", n]);
  rmSync(tmp, { recursive: true, force: true });
}
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

interface Setup {
  label: string;
  bin: string;
  cniPath: string;
  conf: Record<string, unknown>;
  node: string;
  pods: string[];
  /** ADD times per condition (tracked-entry count). */
  add: Map<number, number[]>;
}

let count = 0;

/** A setup in its own node namespace; `serve`: the mncni binary whose `serve` takes its calls. */
async function setup(label: string, o: { bin: string; cniPath: string; conf: (dir: string) => Record<string, unknown>; serve?: string }): Promise<Setup> {
  const id = `s${count++}`;
  const dir = `${tmp}/${id}`;
  mkdirSync(dir, { recursive: true });
  const node = netns(`${tag}-${id}`);
  // Conntrack runs in a namespace once a ruleset there needs it.
  sh(["ip", "netns", "exec", node, "nft", "add table inet mnkbench; add chain inet mnkbench pre { type filter hook prerouting priority 0; }; add rule inet mnkbench pre ct state new accept"]);
  const pods = Array.from({ length: PODS }, (_, i) => netns(`${tag}-${id}p${i}`));
  let conf: Record<string, unknown> = { cniVersion: "1.0.0", name: `bench${id}`, ...o.conf(dir) };
  if (o.serve) {
    const socket = `${dir}/cni.sock`;
    conf = { ...conf, agentSocket: socket };
    const p = Bun.spawn(["ip", "netns", "exec", node, o.serve, "serve", "--socket", socket], { stdout: "ignore", stderr: "ignore" });
    servers.push(p);
    for (let i = 0; i < 500 && !existsSync(socket); i++) await Bun.sleep(20);
    if (!existsSync(socket)) throw new Error(`${label}: mncni serve did not come up`);
  }
  return { label, bin: o.bin, cniPath: o.cniPath, conf, node, pods, add: new Map() };
}

async function call(s: Setup, command: "ADD" | "DEL", i: number): Promise<number> {
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: command,
    CNI_CONTAINERID: `bench-${i}`,
    CNI_NETNS: `/run/netns/${s.pods[i]}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: s.cniPath,
  };
  const started = performance.now();
  const p = Bun.spawn(["nsenter", `--net=/run/netns/${s.node}`, s.bin], { env, stdin: Buffer.from(JSON.stringify(s.conf)), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`${s.label}: ${command} of pod ${i} failed (${code}): ${out}${err}`);
  return ms;
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

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

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
    const doc = resolve(import.meta.dir, "../docs/benchmarks.md");
    const begin = "<!-- conntrack-add:begin -->";
    const end = "<!-- conntrack-add:end -->";
    const text = readFileSync(doc, "utf8");
    const block = `${begin}\n${table}\n${end}`;
    writeFileSync(doc, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : text);
  }
}

try {
  await main();
} finally {
  cleanup();
}
