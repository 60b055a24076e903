// Agent scale benchmark: 1000 Node objects (pod CIDRs, on-link InternalIPs) in a manifests
// directory, reconciled by the real agent code inside a throwaway namespace.
//   node_modules/.bin/bun bench/agent-scale.ts [--nodes 1000]
// Measures: converge from empty, a no-change resync (time and kernel writes; target 0), one
// Node changing (direct, and end to end through fs.watch), and the process RSS.
// Targets (issue 6): converge <= 1 s, one-node change <= 50 ms, RSS <= 150 MB.
import { spawnSync } from "bun";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { Reconciler } from "../src/agent/reconciler.ts";
import { systemNft } from "../src/agent/nft-ruleset.ts";
import { ManifestsDirSource } from "../src/cluster/manifests-dir.ts";
import { Netlink, RTPROT_MNCNI, sysctlGet, sysctlSet } from "../src/kernel/index.ts";

const CLUSTER_CIDR = "10.128.0.0/9";
const podCIDR = (i: number) => `10.${128 + (i >> 8)}.${i & 255}.0/24`;
const nodeIP = (i: number, gen = 0) => (i === 0 ? "10.224.0.1" : `10.224.${1 + (i >> 8) + gen * 8}.${i & 255}`);

function writeNode(dir: string, i: number, gen = 0): void {
  const tmp = join(dir, `.n${i}.tmp`);
  writeFileSync(tmp, stringify({
    apiVersion: "v1", kind: "Node", metadata: { name: `node-${i}` },
    spec: { podCIDRs: [podCIDR(i)] }, status: { addresses: [{ type: "InternalIP", address: nodeIP(i, gen) }] },
  }));
  renameSync(tmp, join(dir, `node-${i}.yaml`));
}

function sh(argv: string[]): string {
  const p = spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`command failed: ${argv.join(" ")}: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

interface Result {
  nodes: number;
  convergeMs: number;
  convergeWrites: number;
  routes: number;
  resyncMs: number;
  resyncWrites: number;
  changeMs: number;
  changeWrites: number;
  changeE2eMs: number;
  rssMB: number;
}

/** Runs inside the bench namespace: the agent's reconcile loop, timed. */
async function inner(dir: string, conf: string, count: number): Promise<Result> {
  const src = new ManifestsDirSource(dir, { debounceMs: 5 });
  const nl = Netlink.open();
  const rec = new Reconciler(
    { nodeName: "node-0", mode: "bridge", routing: "host-gw", clusterCidr: [CLUSTER_CIDR], nonMasqueradeCidr: [CLUSTER_CIDR], cniConfDir: conf, cniBinDir: join(conf, "bin"), ipamDataDir: join(conf, "ipam"), cniLogFile: join(conf, "cni.log"), bridge: "cbr0", mtu: 1500, chainPortmap: false },
    { nl, nft: systemNft, sysctl: { get: sysctlGet, set: sysctlSet } },
  );
  // A timed pass re-reads the directory (the source's re-list) and reconciles its snapshot.
  const pass = (relist = true) => {
    const t0 = performance.now();
    if (relist) src.rescan();
    const rep = rec.reconcile(src.snapshot().state);
    if (rep.errors.length || rep.problems.length) throw new Error(`reconcile failed: ${JSON.stringify([rep.errors, rep.problems.slice(0, 3)])}`);
    return { ms: performance.now() - t0, writes: rep.writes };
  };
  const converge = pass();
  const routes = nl.routes({ protocol: RTPROT_MNCNI }).length;
  if (routes !== count - 1) throw new Error(`expected ${count - 1} routes, found ${routes}`);
  const resync = pass();
  writeNode(dir, 500, 1);
  const change = pass();
  const gw = nl.routes({ protocol: RTPROT_MNCNI }).find((r) => r.dst === podCIDR(500))?.gw;
  if (gw !== nodeIP(500, 1)) throw new Error(`route of node-500 not updated: ${gw}`);
  // End to end: file written -> fs.watch -> debounce -> reconcile -> route in the kernel.
  const done = Promise.withResolvers<number>();
  let t0 = 0;
  src.watch(() => {
    // The source has already re-read the directory: the agent reconciles its snapshot.
    pass(false);
    done.resolve(performance.now() - t0);
  });
  t0 = performance.now();
  writeNode(dir, 501, 1);
  const e2e = await done.promise;
  src.close();
  Bun.gc(true);
  return {
    nodes: count, convergeMs: converge.ms, convergeWrites: converge.writes, routes, resyncMs: resync.ms, resyncWrites: resync.writes,
    changeMs: change.ms, changeWrites: change.writes, changeE2eMs: e2e, rssMB: process.memoryUsage().rss / 2 ** 20,
  };
}

function outer(count: number): void {
  const tag = `${process.pid.toString(36)}`;
  const ns = `mna-bench-${tag}`;
  const peer = `mna-bpeer-${tag}`;
  const tmp = mkdtempSync("/tmp/mna-bench-");
  const dir = join(tmp, "manifests");
  try {
    sh(["mkdir", "-p", dir, join(tmp, "conf")]);
    for (const n of [ns, peer]) sh(["ip", "netns", "add", n]);
    sh(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer]);
    sh(["ip", "-n", ns, "addr", "add", "10.224.0.1/16", "dev", "eth0"]);
    for (const n of [ns, peer]) sh(["ip", "-n", n, "link", "set", "eth0", "up"]);
    for (let i = 0; i < count; i++) writeNode(dir, i);
    const out = sh(["ip", "netns", "exec", ns, process.execPath, import.meta.path, "--inner", dir, join(tmp, "conf"), String(count)]);
    const r = JSON.parse(out.trim().split("\n").at(-1)!) as Result;
    const row = (what: string, value: string, target: string, ok: boolean | undefined) =>
      console.log(`${what.padEnd(44)} ${value.padStart(12)}   ${target.padEnd(10)} ${ok === undefined ? "" : ok ? "ok" : "MISSED"}`);
    console.log(`agent scale: ${r.nodes} Nodes, ${r.routes} host-gw routes (kernel ${sh(["uname", "-r"]).trim()})\n`);
    row("measure", "value", "target", undefined);
    row("converge from empty", `${r.convergeMs.toFixed(1)} ms`, "<= 1000 ms", r.convergeMs <= 1000);
    row("  kernel/file writes", String(r.convergeWrites), "", undefined);
    row("no-change resync", `${r.resyncMs.toFixed(1)} ms`, "", undefined);
    row("  kernel/file writes", String(r.resyncWrites), "0", r.resyncWrites === 0);
    row("one Node changes (resync + reconcile)", `${r.changeMs.toFixed(1)} ms`, "<= 50 ms", r.changeMs <= 50);
    row("  kernel/file writes", String(r.changeWrites), "1", r.changeWrites === 1);
    row("one Node changes, end to end via fs.watch", `${r.changeE2eMs.toFixed(1)} ms`, "<= 50 ms", r.changeE2eMs <= 50);
    row("RSS after the run", `${r.rssMB.toFixed(1)} MB`, "<= 150 MB", r.rssMB <= 150);
  } finally {
    for (const n of [ns, peer]) spawnSync(["ip", "netns", "del", n]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === "--inner") {
  console.log(JSON.stringify(await inner(args[1]!, args[2]!, Number(args[3]))));
} else {
  const i = args.indexOf("--nodes");
  outer(i >= 0 ? Number(args[i + 1]) : 1000);
}
