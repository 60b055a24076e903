// Agent scale benchmark: 1000 Node objects (pod CIDRs, on-link InternalIPs) in a manifests
// directory, reconciled by the real agent code inside a throwaway namespace.
//   node_modules/.bin/bun bench/agent-scale.ts [--nodes 1000] [--pods-per-node 30] [--no-watch]
// Measures: converge from empty, a no-change resync (time and kernel writes; target 0), one
// Node changing (direct, and end to end through fs.watch), and the process RSS.
// Targets (issue 6): converge <= 1 s, one-node change <= 50 ms, RSS <= 150 MB.
// Then a watch-fed run (issue 12): the compiled agent (dist/mncni agent --source
// kubernetes:KUBECONFIG) against the fake API server serving the same Nodes and 30 Pods per
// Node (--pods-per-node), listening in the bench namespace. Measures the initial sync (spawn
// to /readyz 200: every list, the state, the first reconcile) and the agent's RSS then.
// Target: RSS <= 250 MB with 30,000 Pods.
import { spawn, spawnSync } from "bun";
import { readFileSync } from "node:fs";
import { FakeApiServer } from "../test/helpers/kube-apiserver.ts";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { Reconciler } from "../src/agent/reconciler.ts";
import { systemNft } from "../src/agent/nft-ruleset.ts";
import { ManifestsDirSource } from "../src/cluster/manifests-dir.ts";
import { Netlink, RTPROT_MNCNI, sysctlGet, sysctlSet } from "../src/kernel/index.ts";
import { sh } from "./cni-harness.ts";

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

interface WatchResult {
  pods: number;
  syncMs: number;
  routes: number;
  rssMB: number;
}

/** The compiled agent fed by the fake API server; runs from the bench process (the server lives here). */
async function watchFed(ns: string, tmp: string, count: number, podsPerNode: number): Promise<WatchResult> {
  const api = FakeApiServer.start({ netns: `/run/netns/${ns}`, historySize: 1000 });
  let agent: ReturnType<typeof spawn> | undefined;
  try {
    for (let i = 0; i < count; i++) {
      api.put("nodes", {
        metadata: { name: `node-${i}`, labels: { "kubernetes.io/hostname": `node-${i}`, "node.kubernetes.io/instance-type": "Standard_D4s_v5" } },
        spec: { podCIDRs: [podCIDR(i)] },
        status: { addresses: [{ type: "InternalIP", address: nodeIP(i) }, { type: "Hostname", address: `node-${i}` }], images: Array.from({ length: 20 }, (_, k) => ({ names: [`registry.example/image-${k}@sha256:${"0".repeat(64)}`], sizeBytes: 1e8 })) },
      });
    }
    // Pods as an API server sends them: managedFields, containers, statuses (what the trim drops).
    const [a, b] = [10, 128];
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < podsPerNode; k++) {
        const ip = `${a}.${b + (i >> 8)}.${i & 255}.${k + 2}`;
        api.put("pods", {
          metadata: { name: `pod-${i}-${k}`, namespace: `ns-${k % 20}`, labels: { app: `app-${k}`, "pod-template-hash": "5d4f8c7b9" }, annotations: { "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z" }, managedFields: [{ manager: "kubelet", operation: "Update", fieldsV1: { "f:status": { "f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}, "f:podIPs": {} } } }] },
          spec: { nodeName: `node-${i}`, containers: [{ name: "app", image: `registry.example/app-${k}:1.0`, ports: [{ containerPort: 8080 }], resources: { requests: { cpu: "100m", memory: "128Mi" } } }] },
          status: { phase: "Running", hostIP: nodeIP(i), podIP: ip, podIPs: [{ ip }], conditions: [{ type: "Ready", status: "True" }], containerStatuses: [{ name: "app", ready: true, restartCount: 0, image: `registry.example/app-${k}:1.0`, imageID: `sha256:${"1".repeat(64)}` }] },
        });
      }
    }
    for (let k = 0; k < 20; k++) api.put("namespaces", { metadata: { name: `ns-${k}`, labels: { team: `t${k}` } } });
    const kc = api.writeKubeconfig(join(tmp, "kubeconfig"));
    const conf = join(tmp, "kconf");
    const t0 = performance.now();
    agent = spawn(["ip", "netns", "exec", ns, join(import.meta.dir, "../dist/mncni"), "agent", "--node-name", "node-0", "--source", `kubernetes:${kc}`, "--cluster-cidr", CLUSTER_CIDR,
      "--cni-conf-dir", conf, "--cni-bin-dir", join(conf, "bin"), "--ipam-data-dir", join(conf, "ipam"), "--cni-log-file", join(conf, "cni.log"), "--log-file", join(tmp, "agent.log"),
      "--cni-socket", "off", "--state-file", join(tmp, "agent-run.json"), "--metrics-addr", "127.0.0.1:9817"], { stdout: "ignore", stderr: "ignore" });
    for (;;) {
      const c = spawn(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { stdout: "pipe" });
      if ((await new Response(c.stdout).text()) === "200") break;
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}: ${readFileSync(join(tmp, "agent.log"), "utf8").slice(-500)}`);
      if (performance.now() - t0 > 300_000) throw new Error("agent not ready after 300 s");
      await Bun.sleep(20);
    }
    const syncMs = performance.now() - t0;
    const routes = JSON.parse(sh(["ip", "-n", ns, "-j", "route", "show", "proto", "77"])).length;
    // ip netns exec execs the agent: the spawned PID is the agent's.
    const rssMB = Number(readFileSync(`/proc/${agent.pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m)![1]) / 1024;
    return { pods: count * podsPerNode, syncMs, routes, rssMB };
  } finally {
    if (agent) {
      agent.kill("SIGKILL");
      await agent.exited;
    }
    api.close();
  }
}

async function outer(count: number, podsPerNode: number, watch = true): Promise<void> {
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
    // The watch-fed run's API server and /readyz listen on the namespace's loopback.
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
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
    if (!watch) return;
    const w = await watchFed(ns, tmp, count, podsPerNode);
    console.log(`\nwatch-fed (dist/mncni agent --source kubernetes:KUBECONFIG, fake API server): ${count} Nodes, ${w.pods} Pods\n`);
    row("initial sync: spawn to /readyz 200", `${w.syncMs.toFixed(0)} ms`, "", undefined);
    row("  host-gw routes", String(w.routes), String(count - 1), w.routes === count - 1);
    row("agent RSS when ready", `${w.rssMB.toFixed(1)} MB`, "<= 250 MB", w.rssMB <= 250);
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
  const p = args.indexOf("--pods-per-node");
  await outer(i >= 0 ? Number(args[i + 1]) : 1000, p >= 0 ? Number(args[p + 1]) : 30, !args.includes("--no-watch"));
}
