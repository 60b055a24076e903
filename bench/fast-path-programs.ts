// What the fast path's programs cost per packet, as the kernel times them
// (BPF_PROG_TEST_RUN): the pod program sending to a pod of the same node
// (bpf_redirect_peer), the pod program sending to a pod of another node (host-gw routes map,
// bpf_fib_lookup, bpf_redirect_neigh), the underlay program delivering to a local pod
// (conntrack lookup kfunc, bpf_redirect_peer), the pod program handing a packet to the stack
// (from or to a pod not in the plain-pods map), and a program that only returns (what the
// test run itself costs). Tells how much of the fast path's cross-node request/response gap to
// node to node is the programs' work and how much the path's extra veth crossing.
// One node namespace with two pods and an underlay device (a veth pair inside the node); the
// kernel runs each program on a crafted UDP packet, one run per call (a repeated run would
// see the frame the last one rewrote, whose MACs send it to the stack), the programs in turn,
// call after call; the figure is the median of the kernel's time of a run.
// Run as root: node_modules/.bin/bun bench/fast-path-programs.ts [--calls 20000] [--json]
import "./help.ts";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Netlink, withNetns } from "../src/kernel/index.ts";
import { Asm, HostGwRoutesMap, PlainPodsMap, PROG_TYPE, R, closeBpfFd, loadPodRedirect, loadUnderlayIngress, progLoad, progTestRun } from "../src/kernel/bpf/index.ts";
import { parseIP } from "../src/net/ip.ts";

const { values: v } = parseArgs({ args: Bun.argv.slice(2), options: { calls: { type: "string", default: "20000" }, json: { type: "boolean", default: false } } });
const CALLS = Number(v.calls);
if (!Number.isInteger(CALLS) || CALLS < 1) throw new Error(`cannot use --calls "${v.calls}": must be a positive integer`);
const ID = `fpp${process.pid.toString(36)}`.slice(0, 9);
const TC_ACT_REDIRECT = 7;
/** TC_ACT_UNSPEC (-1) as the test run reports it (u32): the programs' verdict for the stack. */
const TC_ACT_STACK = 0xffffffff;

function sh(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`cannot run "${argv.join(" ")}": ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}
const namespaces: string[] = [];
const fds: number[] = [];
function cleanup(): void {
  for (const fd of fds.splice(0)) closeBpfFd(fd);
  for (const n of namespaces.splice(0)) Bun.spawnSync(["ip", "netns", "del", n]);
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => (cleanup(), process.exit(130)));

function netns(suffix: string): string {
  const n = `${ID}-${suffix}`;
  sh(["ip", "netns", "add", n]);
  namespaces.push(n);
  return n;
}

const mac = (m: string) => m.split(":").map((h) => parseInt(h, 16));
/** An Ethernet + IPv4 + UDP frame, TTL 64, a valid header checksum. */
function udp(dstMac: string, srcMac: string, src: string, dst: string): Uint8Array {
  const ip = new Uint8Array(20 + 12);
  ip.set([0x45, 0, 0, ip.length, 0x12, 0x34, 0, 0, 64, 17, 0, 0, ...parseIP(src).bytes, ...parseIP(dst).bytes]);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (ip[i]! << 8) | ip[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  ip[10] = (~s >> 8) & 0xff;
  ip[11] = ~s & 0xff;
  return Uint8Array.from([...mac(dstMac), ...mac(srcMac), 0x08, 0x00, ...ip]);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function main(): void {
  if (process.getuid?.() !== 0) throw new Error("run as root");
  const node = netns("node");
  const path = `/run/netns/${node}`;
  sh(["ip", "-n", node, "link", "set", "lo", "up"]);
  // The underlay: eth0 (10.79.0.1/24) and its peer standing for the switch; node 2 at 10.79.0.2
  // behind a permanent neighbour entry, routing the pod CIDR 10.79.2.0/24.
  sh(["ip", "-n", node, "link", "add", "eth0", "address", "02:79:00:00:01:ff", "type", "veth", "peer", "name", "sw0"]);
  for (const d of ["eth0", "sw0"]) sh(["ip", "-n", node, "link", "set", d, "up"]);
  sh(["ip", "-n", node, "addr", "add", "10.79.0.1/24", "dev", "eth0"]);
  sh(["ip", "-n", node, "neigh", "replace", "10.79.0.2", "lladdr", "02:79:00:00:02:ff", "dev", "eth0", "nud", "permanent"]);
  sh(["ip", "-n", node, "route", "add", "10.79.2.0/24", "via", "10.79.0.2"]);
  sh(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  const nl = Netlink.open(path);
  const pods = ["a", "b"].map((k, i) => {
    const ns = netns(`p${k}`);
    const p = { ip: `10.79.1.${i + 2}`, mac: `02:79:00:00:00:0${i + 2}`, host: `vp${k}`, hostMac: `02:79:00:00:01:0${i + 2}`, hostIndex: 0 };
    sh(["ip", "-n", node, "link", "add", p.host, "address", p.hostMac, "type", "veth", "peer", "name", "eth0", "address", p.mac, "netns", ns]);
    sh(["ip", "-n", node, "link", "set", p.host, "up"]);
    sh(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    sh(["ip", "-n", node, "route", "add", `${p.ip}/32`, "dev", p.host]);
    p.hostIndex = nl.link(p.host)!.index;
    return p;
  });
  const eth0 = nl.link("eth0")!.index;
  nl.close();
  const plain = PlainPodsMap.create();
  const hostGw = HostGwRoutesMap.create();
  for (const p of pods) plain.set({ ip: p.ip, podMac: p.mac, hostMac: p.hostMac, hostIndex: p.hostIndex });
  hostGw.set({ cidr: "10.79.2.0/24", ifindex: eth0 });
  const podProg = loadPodRedirect(plain.fd, { hostGw: hostGw.fd });
  const underlayProg = loadUnderlayIngress(plain.fd, { hostGw: hostGw.fd });
  const nothing = progLoad({ type: PROG_TYPE.SCHED_CLS, insns: new Asm().mov(R.r0, 0).exit().assemble(), license: "GPL", name: "mncni_nothing" });
  fds.push(podProg, underlayProg, nothing);
  const [a, b] = pods as [(typeof pods)[0], (typeof pods)[0]];
  const cases = [
    { key: "nothing", label: "a program that only returns (the test run's own cost)", fd: nothing, pkt: udp(a.hostMac, a.mac, a.ip, b.ip), dev: a.hostIndex, want: 0 },
    { key: "pod-local", label: "pod program: to a plain pod of the node (bpf_redirect_peer)", fd: podProg, pkt: udp(a.hostMac, a.mac, a.ip, b.ip), dev: a.hostIndex, want: TC_ACT_REDIRECT },
    { key: "pod-remote", label: "pod program: to a pod of another node (fib lookup, bpf_redirect_neigh)", fd: podProg, pkt: udp(a.hostMac, a.mac, a.ip, "10.79.2.2"), dev: a.hostIndex, want: TC_ACT_REDIRECT },
    { key: "pod-from-stacked", label: "pod program: from a pod not in the map (a pod a policy selects; to the stack)", fd: podProg, pkt: udp(b.hostMac, "02:79:00:00:00:09", "10.79.1.9", a.ip), dev: b.hostIndex, want: TC_ACT_STACK },
    { key: "pod-to-stacked", label: "pod program: to a pod of the node not in the map (to the stack)", fd: podProg, pkt: udp(a.hostMac, a.mac, a.ip, "10.79.1.9"), dev: a.hostIndex, want: TC_ACT_STACK },
    { key: "underlay", label: "underlay program: to a plain pod of the node (conntrack lookup, bpf_redirect_peer)", fd: underlayProg, pkt: udp("02:79:00:00:01:ff", "02:79:00:00:02:ff", "10.79.2.2", a.ip), dev: eth0, want: TC_ACT_REDIRECT },
  ];
  const ns: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
  withNetns(path, () => {
    for (let i = 0; i < CALLS; i++) {
      for (const c of cases) {
        const r = progTestRun(c.fd, c.pkt, c.dev);
        if (r.retval !== c.want) throw new Error(`${c.key}: the program returned ${r.retval}, not ${c.want}: not the path to time`);
        ns[c.key]!.push(r.duration);
      }
    }
  });
  plain.close();
  hostGw.close();
  const rows = cases.map((c) => ({ key: c.key, label: c.label, p50: median(ns[c.key]!), min: Math.min(...ns[c.key]!) }));
  if (v.json) return void console.log(JSON.stringify({ measured: new Date().toISOString(), calls: CALLS, loadavg: loadavg(), rows }));
  const base = rows[0]!.p50;
  console.log(`${CALLS} runs per program, one per call, the programs in turn; ns per run (the kernel's time of the run), median and minimum; ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}.\n`);
  console.log("| program, path | ns per run, p50 | min | over the empty program, p50 |");
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.label} | ${r.p50.toFixed(0)} | ${r.min.toFixed(0)} | ${r.key === "nothing" ? "" : (r.p50 - base).toFixed(0)} |`);
}

try {
  main();
} finally {
  cleanup();
}
