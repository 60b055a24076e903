// Controller scale benchmark: N Nodes without pod CIDRs (default 5,000) served by the fake
// API server, then `dist/mncni controller` started cold: it lists them, rebuilds its map and
// patches every Node. Measured: wall time from spawn to the last Node patched, and the
// controller process's CPU time (utime + stime from /proc/PID/stat, so the fake server's
// own work in this process is not counted), and its RSS at the end.
//   make build && node_modules/.bin/bun bench/controller-scale.ts [--nodes 5000] [--dual]
// Target (issue 12): 5,000 Nodes from a cold start in <= 2 s of controller CPU.
import { readFileSync } from "node:fs";
import { FakeApiServer } from "../test/helpers/kube-apiserver.ts";
import { requireBinary } from "../test/helpers/binary.ts";

const argv = process.argv.slice(2);
const NODES = Number(argv[argv.indexOf("--nodes") + 1] || 0) || 5000;
const DUAL = argv.includes("--dual");
const TICK = 100; // sysconf(_SC_CLK_TCK) on Linux

function cpuSeconds(pid: number): { user: number; sys: number } {
  // Fields after the ")" of comm: state is field 3, utime 14, stime 15.
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(f[11]) / TICK, sys: Number(f[12]) / TICK };
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A Node as a kubelet registers it: labels, addresses, conditions, capacity (what the trim drops). */
function node(i: number) {
  return {
    metadata: { name: `node-${i}`, labels: { "kubernetes.io/hostname": `node-${i}`, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": `zone-${i % 3}` } },
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: `172.16.${i >> 8}.${i & 255}` }, { type: "Hostname", address: `node-${i}` }],
      capacity: { cpu: "8", memory: "32Gi", pods: "110" },
      conditions: ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => ({ type, status: type === "Ready" ? "True" : "False", reason: "KubeletReady", lastHeartbeatTime: "2026-01-01T00:00:00Z" })),
      nodeInfo: { kubeletVersion: "v1.31.0", kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12", containerRuntimeVersion: "containerd://1.7" },
    },
  };
}

async function run(nodes: number): Promise<{ wallS: number; user: number; sys: number; rss: number; patches: number }> {
  const api = FakeApiServer.start({ historySize: 2 * nodes + 100, bookmarkIntervalMs: 60_000 });
  try {
    for (let i = 0; i < nodes; i++) api.put("nodes", node(i));
    const cidrs = DUAL ? "10.0.0.0/8,fd00:10::/48" : "10.0.0.0/8";
    const t0 = performance.now();
    const p = Bun.spawn([requireBinary(), "controller", "--kubeconfig", api.writeKubeconfig(), "--cluster-cidr", cidrs, "--metrics-addr", "off", "--log-level", "warn"], { stdout: "ignore", stderr: "inherit" });
    const done = () => api.requests.length >= nodes && api.requestsTo("PATCH", "/api/v1/nodes/").filter((r) => r.status === 200).length >= nodes;
    while (!done()) {
      if (p.exitCode !== null) throw new Error(`controller exited with ${p.exitCode}`);
      if (performance.now() - t0 > 120_000) throw new Error("controller did not finish within 120 s");
      await Bun.sleep(20);
    }
    const wallS = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(p.pid);
    const rss = rssMB(p.pid);
    p.kill("SIGKILL");
    await p.exited;
    if (api.podCIDRConflicts.length) throw new Error(`CIDRs handed out twice: ${api.podCIDRConflicts.slice(0, 3).join("; ")}`);
    return { wallS, ...cpu, rss, patches: api.requestsTo("PATCH", "/api/v1/nodes/").length };
  } finally {
    api.close();
  }
}

const rows = [{ label: "start-up only (1 Node)", ...(await run(1)) }, { label: `${NODES} Nodes, cold start${DUAL ? ", dual-stack" : ""}`, ...(await run(NODES)) }];
const fmt = (n: number, d = 2) => n.toFixed(d);
console.log(`\ncontroller-scale: ${NODES} Nodes (fake API server over HTTPS in this process; CPU from /proc/PID/stat of the controller)\n`);
console.log(["run".padEnd(34), "wall s".padStart(8), "cpu s".padStart(8), "user s".padStart(8), "sys s".padStart(8), "RSS MB".padStart(8), "patches".padStart(8)].join(" "));
for (const r of rows) console.log([r.label.padEnd(34), fmt(r.wallS).padStart(8), fmt(r.user + r.sys).padStart(8), fmt(r.user).padStart(8), fmt(r.sys).padStart(8), fmt(r.rss, 0).padStart(8), String(r.patches).padStart(8)].join(" "));
const big = rows[1]!;
console.log(`\ntarget: <= 2 s controller CPU for ${NODES} Nodes: ${big.user + big.sys <= 2 ? "met" : "NOT met"} (${fmt(big.user + big.sys)} s)`);
