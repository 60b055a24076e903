// First-packet latency to a ClusterIP with 10, 1,000 and 10,000 Services: mncni's nftables
// Service proxy (`mncni agent --service-proxy`) next to the same Services in kube-proxy's
// iptables layout (as of 1.33: KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-*, loaded with
// iptables-restore, iptables-nft) in the same node namespace, what KEP-3866 measured: the
// iptables layout matches a packet against the Services one rule after another, so its first
// packet grows with the count; a verdict map lookup should not.
//
// One node namespace per Service count (each its own one-node cluster from
// test/agent/lab.ts: switch, router, external host, the compiled agent on a manifests
// directory, one pod added through the installed plugin), so that every round measures every
// count and both proxies back to back. mncni's Services are 10.96.0.0/16, kube-proxy's
// 10.97.0.0/16, each Service with one endpoint, the external host's echo server (the
// destination does not change what the rules cost). The measured Service is the last one
// written: in the iptables layout every other Service's rule is tried before it (the worst
// case; an average Service costs about half). While mncni's side is measured, kube-proxy's
// jump from nat PREROUTING is removed (its rules stay loaded); while kube-proxy's side is
// measured, mncni's table stays (one map lookup that misses).
//
// A sample is one TCP connect from the pod (SYN to established: the SYN is the packet the
// NAT rules are evaluated for), by a client process kept running in each pod. A round takes
// CONNECTS samples per side and count, in batches of BATCH that go round every count and
// both proxies in turn (the order rotating), so that the machine's load, which moves by the
// second on a shared machine, falls on all of them alike; a round's figure is the median of
// its samples. Ratios to 10 Services are taken per round and their median is reported, over
// ROUNDS rounds (at least 9).
//   node_modules/.bin/bun bench/service-first-packet.ts [--scales 10,1000,10000] [--rounds 9] [--connects 100] [--batch 10]
// Target: mncni at 10,000 Services within 1.1x of at 10.
import "./help.ts";
import { spawn, type Subprocess } from "bun";
import { writeFileSync, renameSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { addPod, buildCluster, destroyCluster, EXT_IP, startAgent, waitFor, type TestCluster, type TestNode } from "../test/agent/lab.ts";
import { inNetns, run } from "../test/helpers/netns.ts";
import { iptablesLayout, type KpService } from "../test/helpers/kube-proxy-rules.ts";

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SCALES = arg("--scales", "10,1000,10000").split(",").map(Number);
const ROUNDS = Number(arg("--rounds", "9"));
const CONNECTS = Number(arg("--connects", "100"));
const BATCH = Number(arg("--batch", "10"));
const ECHO = resolve(import.meta.dir, "../test/helpers/svc-echo.ts");
const PORT = 8080;
const CLUSTER_CIDR = "10.244.0.0/16";

const median = (x: number[]) => {
  const s = [...x].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ipOf = (prefix: string, i: number) => `${prefix}.${(i >> 8) & 255}.${i & 255}`;
/** Service i (1-based) of a proxy's range: 10.96.0.1, ... (never .0). */
const clusterIP = (range: "10.96" | "10.97", i: number) => ipOf(range, i + Math.floor(i / 255) + 1);

/** The connect client running in a pod: one request line, one JSON answer line. */
class Client {
  private readonly proc: Subprocess<"pipe", "pipe", "inherit">;
  private readonly reader: { read(): Promise<{ value?: Uint8Array; done?: boolean }> };
  private buf = "";

  constructor(podNs: string) {
    this.proc = spawn(["ip", "netns", "exec", podNs, process.execPath, ECHO, "client"], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    this.reader = this.proc.stdout.getReader();
  }

  async connects(target: string, n: number): Promise<number[]> {
    this.proc.stdin.write(`${target}:80 ${n}\n`);
    this.proc.stdin.flush();
    while (!this.buf.includes("\n")) {
      const { value, done } = await this.reader.read();
      if (done) throw new Error("the connect client exited");
      this.buf += new TextDecoder().decode(value);
    }
    const i = this.buf.indexOf("\n");
    const line = this.buf.slice(0, i);
    this.buf = this.buf.slice(i + 1);
    const v = JSON.parse(line) as number[] | { error: string };
    if (!Array.isArray(v)) throw new Error(`connect to ${target}: ${v.error}`);
    return v;
  }

  stop(): void {
    this.proc.kill();
  }
}

interface Scale {
  count: number;
  client?: Client;
  c: TestCluster;
  n: TestNode;
  echo: Subprocess;
  mncni: boolean;
  kpTarget: string;
  mnTarget: string;
  restoreSeconds: number;
}

function mncniManifests(count: number): object {
  const items: object[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `svc-${i}`;
    items.push({ apiVersion: "v1", kind: "Service", metadata: { name, namespace: "bench" }, spec: { type: "ClusterIP", clusterIP: clusterIP("10.96", i), clusterIPs: [clusterIP("10.96", i)], ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: PORT }] } });
    items.push({
      apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", addressType: "IPv4",
      metadata: { name: `${name}-1`, namespace: "bench", labels: { "kubernetes.io/service-name": name } },
      endpoints: [{ addresses: [EXT_IP], conditions: { ready: true } }],
      ports: [{ name: "http", protocol: "TCP", port: PORT }],
    });
  }
  return { apiVersion: "v1", kind: "List", items };
}

function kubeProxyServices(count: number): KpService[] {
  return Array.from({ length: count }, (_, k) => ({
    namespace: "bench", name: `svc-${k + 1}`, clusterIP: clusterIP("10.97", k + 1),
    ports: [{ name: "http", protocol: "TCP" as const, port: 80, targetPort: PORT }], endpoints: [EXT_IP],
  }));
}

const JUMP = ["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"];
const kubeProxy = (s: Scale, on: boolean) => {
  const present = inNetns(s.n.ns, ["iptables", "-t", "nat", "-C", "PREROUTING", ...JUMP], { allowFail: true }).code === 0;
  if (on && !present) inNetns(s.n.ns, ["iptables", "-t", "nat", "-I", "PREROUTING", "1", ...JUMP]);
  if (!on && present) inNetns(s.n.ns, ["iptables", "-t", "nat", "-D", "PREROUTING", ...JUMP]);
};

const canConnect = (s: Scale, target: string) => inNetns(s.n.podNs, [process.execPath, ECHO, "probe", "tcp", `${target}:80`, "1"], { allowFail: true }).stdout.includes('"ok":true');

/** Set once a count was not programmed: the build has no Service proxy, the other counts are not waited for. */
let noProxy = false;

async function setUp(count: number): Promise<Scale> {
  const c = buildCluster(1);
  const n = c.nodes[0]!;
  startAgent(c, n, ["--service-proxy"]);
  await waitFor("the agent's conflist", () => existsSync(join(n.dir, "conf", "10-mncni.conflist")), 30_000);
  await addPod(n);
  const echo = spawn(["ip", "netns", "exec", c.ext, process.execPath, ECHO, "serve", "ext", String(PORT)], { stdout: "ignore", stderr: "inherit" });
  const s: Scale = { count, c, n, echo, mncni: false, kpTarget: clusterIP("10.97", count), mnTarget: clusterIP("10.96", count), restoreSeconds: NaN };
  await waitFor("the echo server", () => inNetns(c.ext, ["ss", "-ltnH", `sport = :${PORT}`]).stdout.trim() !== "", 10_000);
  // mncni's Services: one List file, renamed into place (the directory source skips dotfiles).
  const tmp = join(c.manifests, ".services.tmp");
  writeFileSync(tmp, JSON.stringify(mncniManifests(count)));
  renameSync(tmp, join(c.manifests, "services.json"));
  // kube-proxy's, as it writes them: one iptables-restore of the filter and nat tables.
  const t0 = performance.now();
  inNetns(n.ns, ["iptables-restore"], { stdin: iptablesLayout(kubeProxyServices(count), { clusterCIDR: CLUSTER_CIDR }) });
  s.restoreSeconds = (performance.now() - t0) / 1000;
  kubeProxy(s, false);
  const patience = 20_000 + 10 * count;
  try {
    if (!noProxy) {
      await waitFor(`mncni to program ${count} Services`, () => canConnect(s, s.mnTarget), patience, 250);
      s.mncni = true;
    }
  } catch {
    noProxy = true;
    console.error(`mncni: ${count} Services not programmed in ${patience / 1000} s (does this build proxy Services?): its column stays empty`);
  }
  kubeProxy(s, true);
  if (!canConnect(s, s.kpTarget)) throw new Error(`kube-proxy's layout does not carry ${s.kpTarget} in ${n.ns}`);
  return s;
}

interface Round {
  kp: Map<number, number>;
  mn: Map<number, number>;
}

async function main(): Promise<void> {
  const load0 = run(["cat", "/proc/loadavg"]).stdout.trim();
  const scales: Scale[] = [];
  try {
    for (const count of SCALES) {
      scales.push(await setUp(count));
      console.error(`${count} Services: kube-proxy's iptables-restore took ${scales.at(-1)!.restoreSeconds.toFixed(2)} s; mncni ${scales.at(-1)!.mncni ? "programmed" : "absent"}`);
    }
    for (const s of scales) s.client = new Client(s.n.podNs);
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const samples = { kp: new Map<number, number[]>(), mn: new Map<number, number[]>() };
      const sides = (s: Scale) => (["kp", "mn"] as const).filter((side) => side === "kp" || s.mncni);
      const slots = scales.flatMap((s) => sides(s).map((side) => ({ s, side })));
      for (let b = 0; b * BATCH < CONNECTS; b++) {
        // Rotate the order every batch: no count or proxy always follows the same one.
        const k = (b + r) % slots.length;
        for (const { s, side } of [...slots.slice(k), ...slots.slice(0, k)]) {
          kubeProxy(s, side === "kp");
          const target = side === "kp" ? s.kpTarget : s.mnTarget;
          if (b === 0) await s.client!.connects(target, 3); // warm the path (neighbours, the client's JIT)
          const got = samples[side].get(s.count) ?? [];
          got.push(...(await s.client!.connects(target, Math.min(BATCH, CONNECTS - b * BATCH))));
          samples[side].set(s.count, got);
        }
      }
      for (const s of scales) kubeProxy(s, true);
      const round: Round = { kp: new Map(), mn: new Map() };
      for (const side of ["kp", "mn"] as const) for (const [count, x] of samples[side]) round[side].set(count, median(x));
      rounds.push(round);
      console.error(`round ${r + 1}/${ROUNDS}: ${scales.map((s) => `${s.count}: iptables ${round.kp.get(s.count)!.toFixed(0)} µs${round.mn.has(s.count) ? `, mncni ${round.mn.get(s.count)!.toFixed(0)} µs` : ""}`).join("; ")}`);
    }
    const load1 = run(["cat", "/proc/loadavg"]).stdout.trim();
    const base = SCALES[0]!;
    const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "—");
    const ratios = (side: "kp" | "mn", count: number) => rounds.filter((r) => r[side].has(count)).map((r) => r[side].get(count)! / r[side].get(base)!);
    /** The median of the per-round ratios, and their range. */
    const ratio = (side: "kp" | "mn", count: number) => {
      const x = ratios(side, count);
      return count === base ? "1.00" : `${fmt(median(x), 2)} (${fmt(Math.min(...x), 2)}–${fmt(Math.max(...x), 2)})`;
    };
    const med = (side: "kp" | "mn", count: number) => median(rounds.filter((r) => r[side].has(count)).map((r) => r[side].get(count)!));
    const cross = (count: number) => median(rounds.filter((r) => r.mn.has(count)).map((r) => r.mn.get(count)! / r.kp.get(count)!));
    console.log(`\nFirst-packet latency to a ClusterIP (TCP connect from a pod, µs; median of ${ROUNDS} rounds, each the median of ${CONNECTS} connects; ratios per round: their median, and range)`);
    console.log(`load before ${load0}, after ${load1}\n`);
    console.log(`| Services | kube-proxy iptables layout | ratio to ${base} | mncni nftables proxy | ratio to ${base} | mncni / iptables | iptables-restore of the layout |`);
    console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const s of scales) {
      console.log(`| ${s.count.toLocaleString("en")} | ${fmt(med("kp", s.count))} µs | ${ratio("kp", s.count)} | ${s.mncni ? `${fmt(med("mn", s.count))} µs` : "—"} | ${s.mncni ? ratio("mn", s.count) : "—"} | ${s.mncni ? fmt(cross(s.count), 2) : "—"} | ${s.restoreSeconds.toFixed(2)} s |`);
    }
  } finally {
    for (const s of scales) s.client?.stop();
    for (const s of scales) s.echo.kill();
    for (const s of scales) await destroyCluster(s.c);
  }
}

await main();
