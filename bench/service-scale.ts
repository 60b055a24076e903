// Service proxy control-plane benchmark: 10,000 Services x 10 endpoints (ClusterIP + NodePort,
// TCP), programmed by the agent's Service proxy into a throwaway namespace that is the node (a
// child process inside it, as the agent runs in its node's namespace), next to the same
// Services in kube-proxy's nftables layout (a chain per Service and per endpoint, a
// service-ips verdict map; test/helpers/kube-proxy-rules.ts, the generator the coexistence tests load) loaded
// with `nft -f` as kube-proxy does, in the same run, rounds interleaved.
//   node_modules/.bin/bun bench/service-scale.ts [--services 10000] [--endpoints 10] [--rounds 3] [--changes 41]
//     [--baseline-src DIR] (another build's src/, e.g. `git archive REV src | tar -x -C DIR/..`,
//     with a node_modules beside it: measured in the same rounds) [--no-kube-proxy]
// Measures: full sync (state to programmed table), one endpoint change programmed (engine
// sync from the new state: p50 / p90; the source's state rebuild shown on its own row), the
// agent's RSS growth (RSS with the state and table minus RSS before: right after a GC, and
// 3 s and another GC later, once the allocator has returned the freed pages; of that, the live
// JS heap and the heap blocks held beyond it, from bun:jsc heapStats()), the table's size.
// kube-proxy's rows: its full ruleset through `nft -f`, and one endpoint change as its partial
// sync writes it (the Service's chain rewritten, the new endpoint's chain added, the old one
// deleted) through `nft -f`.
// Targets: full <= 1 s, one endpoint change <= 5 ms p50, RSS growth <= 100 MB.
import "./help.ts";
import { spawnSync } from "bun";
import { heapStats } from "bun:jsc";
import { nftablesEndpointsChange, nftablesLayout, type KpService } from "../test/helpers/kube-proxy-rules.ts";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SERVICES = arg("--services", 10_000);
const ENDPOINTS = arg("--endpoints", 10);
const ROUNDS = arg("--rounds", 3);
const CHANGES = arg("--changes", 41);
const NODES = 10;
const SELF = "node-0";

const svcIP = (i: number) => `10.96.${i >> 8}.${i & 255}`;
const epIP = (i: number, j: number, gen = 0) => `10.${100 + j}.${(i >> 8) + gen * 64}.${(i & 255)}`;
const nodePort = (i: number) => 30000 + (i % 2700);

function sh(argv: string[], stdin?: string): { out: string; ms: number } {
  const t0 = performance.now();
  const p = spawnSync(argv, { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t0;
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.slice(0, 6).join(" ")}: ${p.stderr.toString().slice(0, 500)}`);
  return { out: p.stdout.toString(), ms };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))]!;

// ---- the child: mncni's proxy in the node's namespace ---------------------------------------
async function childMncni(): Promise<void> {
  // --src: another build's sources (the baseline's, exported with git archive) in the same harness.
  const src = process.argv.includes("--src") ? process.argv[process.argv.indexOf("--src") + 1]! : `${import.meta.dir}/../src`;
  const { buildClusterState } = await import(`${src}/cluster/build-state.ts`);
  const { ServiceProxy } = await import(`${src}/agent/services/proxy.ts`);
  const { systemNft } = await import(`${src}/agent/nft-ruleset.ts`);
  type Obj = import("../src/cluster/types.ts").KubeObject;
  Bun.gc(true);
  const rss0 = process.memoryUsage().rss;
  const heap0 = heapStats();
  const service = (i: number): Obj => ({ kind: "Service", metadata: { name: `s${i}`, namespace: `ns-${i % 100}` }, spec: { type: "NodePort", clusterIP: svcIP(i), clusterIPs: [svcIP(i)], ports: [{ name: "http", port: 80, targetPort: "http", nodePort: nodePort(i) }] } }) as Obj;
  const slice = (i: number, gen = 0, changed = -1): Obj => ({
    kind: "EndpointSlice", metadata: { name: `s${i}-abc`, namespace: `ns-${i % 100}`, labels: { "kubernetes.io/service-name": `s${i}` } },
    addressType: "IPv4", ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: Array.from({ length: ENDPOINTS }, (_, j) => ({ addresses: [epIP(i, j, j === changed ? gen : 0)], conditions: { ready: true }, nodeName: `node-${(i + j) % NODES}` })),
  }) as Obj;
  // Only NodePort numbers below 2,700 services are unique; the rest share (an element the
  // kernel refuses, reported): keep every Service unique by giving the rest no nodePort.
  const objs: Obj[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const s = service(i) as any;
    if (i >= 2700) delete s.spec.ports[0].nodePort, (s.spec.type = "ClusterIP");
    objs.push(s, slice(i));
  }
  const proxy = new ServiceProxy({ nodeName: SELF, clusterCidr: ["10.96.0.0/8"], nodeportAddresses: [], nft: systemNft });
  const cpu = () => {
    const c = process.cpuUsage();
    return (c.user + c.system) / 1000;
  };
  const c0 = cpu();
  const t0 = performance.now();
  let state = buildClusterState(objs);
  const tState = performance.now() - t0;
  const first = proxy.sync(state, ["10.99.0.1"]);
  const full = performance.now() - t0;
  const fullCpu = cpu() - c0;
  if (first.rejected.length) throw new Error(`rejected: ${first.rejected.slice(0, 3).join("; ")}`);
  proxy.sync(state, ["10.99.0.1"]); // the next pass records the fingerprint (as the agent's does)
  Bun.gc(true);
  const rss1 = process.memoryUsage().rss;
  // What the agent keeps: the allocator returns the pages a sync's garbage freed only a while
  // after a later collection (at 10,000 Services ~20 MB less than right after the sync, flat
  // from then on), which the agent's periodic passes give it.
  await Bun.sleep(2000);
  Bun.gc(true);
  await Bun.sleep(1000);
  const rssSettled = process.memoryUsage().rss;
  // Where the kept RSS is: the live heap (objects and the strings they keep) and the heap's
  // blocks beyond it (space the garbage left in blocks that survivors keep).
  const heap1 = heapStats();
  const heapLive = (heap1.heapSize + heap1.extraMemorySize - heap0.heapSize - heap0.extraMemorySize) / 2 ** 20;
  const heapHeld = (heap1.heapCapacity - heap1.heapSize - (heap0.heapCapacity - heap0.heapSize)) / 2 ** 20;
  const rebuild: number[] = [];
  const change: number[] = [];
  const changeCpu: number[] = [];
  let writes = 0;
  for (let k = 0; k < CHANGES; k++) {
    const i = (k * 7919) % SERVICES;
    const a = performance.now();
    objs[2 * i + 1] = slice(i, 1 + (k % 2), k % ENDPOINTS);
    state = buildClusterState(objs);
    const b = performance.now();
    const bc = cpu();
    const r = proxy.sync(state, ["10.99.0.1"]);
    change.push(performance.now() - b);
    changeCpu.push(cpu() - bc);
    rebuild.push(b - a);
    writes += r.writes;
    if (r.changes.some((c: string) => !/element change/.test(c))) throw new Error(`an endpoint change was structural: ${r.changes.join("; ")}`);
  }
  const elements = Number(sh(["sh", "-c", "nft -j list table inet mncni-services | grep -o '\"concat\"' | wc -l"]).out) / 2;
  console.log(JSON.stringify({ full, fullCpu, changeCpu, tState, rss: (rss1 - rss0) / 2 ** 20, rssSettled: (rssSettled - rss0) / 2 ** 20, heapLive, heapHeld, change, rebuild, writes, elements: Math.round(elements) }));
}

// ---- kube-proxy's layout through nft -f (the generator the coexistence tests use) -----------
const KP_OPTIONS = { clusterCIDR: "10.0.0.0/8" };

/** Service i in kube-proxy's terms; endpoint j of generation gen (an endpoint change replaces one generation with another). */
function kpService(i: number, gens: ReadonlyMap<number, number> = new Map()): KpService {
  return {
    namespace: `ns-${i % 100}`,
    name: `s${i}`,
    clusterIP: svcIP(i),
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, ...(i < 2700 ? { nodePort: nodePort(i) } : {}) }],
    endpoints: Array.from({ length: ENDPOINTS }, (_, j) => epIP(i, j, gens.get(j) ?? 0)),
  };
}

const kubeProxyScript = () => nftablesLayout(Array.from({ length: SERVICES }, (_, i) => kpService(i)), KP_OPTIONS);

/** kube-proxy's partial sync for one endpoint of Service i replaced (gen 1 <-> 2). */
const kubeProxyChange = (i: number, j: number, gen: number, prevGen: number) =>
  nftablesEndpointsChange(kpService(i, new Map([[j, prevGen]])), kpService(i, new Map([[j, gen]])), KP_OPTIONS);

function kubeProxy(ns: string): { full: number; change: number[] } {
  const script = kubeProxyScript();
  const full = sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], script).ms;
  const change: number[] = [];
  const gens = new Map<string, number>();
  for (let k = 0; k < CHANGES; k++) {
    const i = (k * 7919) % SERVICES;
    const j = k % ENDPOINTS;
    const prev = gens.get(`${i}/${j}`) ?? 0;
    const gen = prev === 1 ? 2 : 1;
    gens.set(`${i}/${j}`, gen);
    change.push(sh(["ip", "netns", "exec", ns, "nft", "-f", "-"], kubeProxyChange(i, j, gen, prev)).ms);
  }
  return { full, change };
}

// ---- the parent -------------------------------------------------------------------------------
if (process.argv.includes("--child")) {
  await childMncni();
  process.exit(0);
}

const tag = `svb${process.pid.toString(36)}`;
// --baseline-src DIR: the same child on another build's sources, in the same rounds (order alternating).
const baseSrc = process.argv.includes("--baseline-src") ? process.argv[process.argv.indexOf("--baseline-src") + 1] : undefined;
const withKubeProxy = !process.argv.includes("--no-kube-proxy");
type Row = { mncni: any; base?: any; kp?: { full: number; change: number[] } };
const rows: Row[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const ns = `${tag}-${r}`;
  sh(["ip", "netns", "add", ns]);
  try {
    const child = (src?: string) => {
      const out = JSON.parse(sh(["ip", "netns", "exec", ns, process.execPath, import.meta.path, "--child", "--services", String(SERVICES), "--endpoints", String(ENDPOINTS), "--changes", String(CHANGES), ...(src ? ["--src", src] : [])]).out);
      sh(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"]);
      return out;
    };
    const row: Row = { mncni: undefined };
    if (baseSrc && r % 2 === 0) row.base = child(baseSrc);
    row.mncni = child();
    if (baseSrc && r % 2 === 1) row.base = child(baseSrc);
    if (withKubeProxy) row.kp = kubeProxy(ns);
    rows.push(row);
    const m = row.mncni;
    console.error(`round ${r + 1}: mncni full ${m.full.toFixed(0)} ms, change p50 ${pct(m.change, 0.5).toFixed(2)} ms, RSS ${m.rss.toFixed(0)} / settled ${m.rssSettled.toFixed(0)} MB` +
      (row.base ? `; baseline full ${row.base.full.toFixed(0)} ms, RSS ${row.base.rss.toFixed(0)} / settled ${row.base.rssSettled.toFixed(0)} MB` : "") +
      (row.kp ? `; kube-proxy layout full ${row.kp.full.toFixed(0)} ms, change p50 ${pct(row.kp.change, 0.5).toFixed(1)} ms` : ""));
  } finally {
    spawnSync(["ip", "netns", "del", ns]);
  }
}
const med = (f: (x: Row) => number) => pct(rows.map(f), 0.5);
const fmt = (n: number, d = 1) => n.toFixed(d);
/** A row's cells: this build, the baseline (when measured), kube-proxy's layout (when measured). */
const cells = (f: (m: any) => number, d: number, unit: string, kp?: (k: NonNullable<Row["kp"]>) => number, kd = 1) =>
  [`${fmt(med((x) => f(x.mncni)), d)} ${unit}`, ...(baseSrc ? [`${fmt(med((x) => f(x.base)), d)} ${unit}`] : []), ...(withKubeProxy ? [kp ? `${fmt(med((x) => kp(x.kp!)), kd)} ${unit}` : "-"] : [])].join(" | ");
console.log(`\nService proxy control plane: ${SERVICES} Services x ${ENDPOINTS} endpoints (${Math.min(SERVICES, 2700)} with a NodePort), ${ROUNDS} rounds, ${CHANGES} endpoint changes each; medians over rounds${baseSrc ? `; baseline: ${baseSrc}` : ""}`);
console.log(`load: ${sh(["uptime"]).out.trim()}\n`);
console.log(`| measure | mncni --service-proxy |${baseSrc ? " baseline (same run) |" : ""}${withKubeProxy ? " kube-proxy's nftables layout via nft -f (same run) |" : ""} target |`);
console.log(`|---|---|${baseSrc ? "---|" : ""}${withKubeProxy ? "---|" : ""}---|`);
console.log(`| full sync (state to programmed table) | ${cells((m) => m.full, 0, "ms", (k) => k.full, 0)} | <= 1000 ms |`);
console.log(`|   of which the state build (source) | ${cells((m) => m.tState, 0, "ms")} | |`);
console.log(`| full sync, CPU time of the agent's process (the machine's other load left out; nft's own CPU not counted) | ${cells((m) => m.fullCpu, 0, "ms")} | |`);
console.log(`| one endpoint change programmed, p50 | ${cells((m) => pct(m.change, 0.5), 2, "ms", (k) => pct(k.change, 0.5))} | <= 5 ms |`);
console.log(`| one endpoint change programmed, p90 | ${cells((m) => pct(m.change, 0.9), 2, "ms", (k) => pct(k.change, 0.9))} | |`);
console.log(`| one endpoint change, CPU time of the agent's process, p50 | ${cells((m) => pct(m.changeCpu, 0.5), 2, "ms")} | |`);
console.log(`| the source's state rebuild per change, p50 (not in the row above) | ${cells((m) => pct(m.rebuild, 0.5), 1, "ms")} | |`);
console.log(`| agent RSS growth right after the sync and a GC (state + table bookkeeping + garbage not yet returned) | ${cells((m) => m.rss, 0, "MB")} | <= 100 MB |`);
console.log(`| agent RSS growth 3 s later, after another GC (the freed pages returned: what the agent keeps) | ${cells((m) => m.rssSettled, 0, "MB")} | <= 100 MB |`);
console.log(`|   of which the live JS heap (the bench's objects, the state, the proxy's records, their strings) | ${cells((m) => m.heapLive, 0, "MB")} | |`);
console.log(`|   of which heap blocks held beyond the live heap | ${cells((m) => m.heapHeld, 0, "MB")} | |`);
console.log(`| set elements in the table | ${rows[0]!.mncni.elements}${baseSrc ? ` | ${rows[0]!.base.elements}` : ""}${withKubeProxy ? ` | chains: ${SERVICES * (ENDPOINTS + 1) + Math.min(SERVICES, 2700)}` : ""} | |`);
