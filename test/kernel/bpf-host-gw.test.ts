// The fast path across nodes over host-gw routes (src/kernel/bpf/), on the real kernel in
// throwaway namespaces: two "node" namespaces on a switch namespace's bridge (the underlay),
// each routing the other's pod CIDRs (IPv4 and IPv6) via the other's address; pod A on node 1, pods B (plain)
// and C (not plain: stands for a pod a policy selects) on node 2. On each node the pod
// program sits on the pods' host devices and the underlay program on eth0, with the node's
// plain pods, its host-gw routes map (the other node's pod CIDR -> eth0) and its counters.
//   - the kernel runs the programs on crafted packets (BPF_PROG_TEST_RUN): what goes out of
//     the underlay, what comes in from it, what takes the stack (a route out of another device,
//     no route, above the route's MTU, a forged source, ...), and the counter each moves;
//   - real traffic: both nodes forward, but their forward hook drops every TCP and UDP
//     packet, so a pair that talks over TCP and UDP did so only through the fast path; what
//     the programs leave to the stack (a forged source, the non-plain pod) stays dropped, and
//     ICMP (always the stack's) still flows; a Service's reply (DNAT on node 1) takes node 1's
//     stack because its conntrack knows the flow, and is translated back. An nftables counter in pod B on the TTL it sees
//     (64 - 2: one per node, as routing; the hop limit likewise) is the independent view of the TTL.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { Netlink, withNetns } from "../../src/kernel/index.ts";
import { HostGwRoutesMap, PlainPodsMap, VerdictCounters, closeBpfFd, loadPodRedirect, loadUnderlayIngress, progTestRun } from "../../src/kernel/bpf/index.ts";
import { type Pkt, TC_ACT_STACK, TC_ACT_REDIRECT, checksum, counted, hexMac, packet } from "./bpf-packets.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";

setDefaultTimeout(60_000);

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const ECHO = resolve(import.meta.dir, "../helpers/svc-echo.ts");

interface Pod { ns: string; ip: string; ip6: string; mac: string; host: string; hostMac: string; hostIndex: number }
interface Node {
  ns: string;
  ip: string;
  ip6: string;
  mac: string;
  eth0: number;
  nl: Netlink;
  plain: PlainPodsMap;
  hostGw: HostGwRoutesMap;
  counters: VerdictCounters;
  podProg: number;
  underlayProg: number;
}

const nodes: Node[] = [];
const pods: Record<"a" | "b" | "c", Pod> = {} as never;
const echos: Bun.Subprocess[] = [];

/**
 * A namespace whose links skip duplicate address detection: a tentative link-local address
 * cannot send neighbour solicitations, and at high load DAD holds it for seconds.
 */
function noDadNetns(prefix: string): string {
  const ns = createNetns(prefix);
  inNetns(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
  return ns;
}

function addPod(node: Node, key: "a" | "b" | "c", ip: string, ip6: string, n: number): Pod {
  const ns = noDadNetns("mgp");
  const p: Pod = { ns, ip, ip6, mac: `02:78:00:00:00:0${n}`, host: `vp${key}`, hostMac: `02:78:00:00:01:0${n}`, hostIndex: 0 };
  run(["ip", "-n", node.ns, "link", "add", p.host, "address", p.hostMac, "type", "veth", "peer", "name", "eth0", "address", p.mac, "netns", ns]);
  run(["ip", "-n", node.ns, "link", "set", p.host, "up"]);
  run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
  run(["ip", "-n", ns, "addr", "add", `${ip}/32`, "dev", "eth0"]);
  run(["ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
  run(["ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
  run(["ip", "-n", ns, "neigh", "add", "169.254.1.1", "lladdr", p.hostMac, "dev", "eth0", "nud", "permanent"]);
  run(["ip", "-n", node.ns, "route", "add", `${ip}/32`, "dev", p.host]);
  run(["ip", "-n", node.ns, "neigh", "add", ip, "lladdr", p.mac, "dev", p.host, "nud", "permanent"]);
  run(["ip", "-n", ns, "addr", "add", `${ip6}/128`, "dev", "eth0", "nodad"]);
  run(["ip", "-n", ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
  run(["ip", "-n", ns, "-6", "neigh", "add", "fe80::1", "lladdr", p.hostMac, "dev", "eth0", "nud", "permanent"]);
  run(["ip", "-n", node.ns, "-6", "route", "add", `${ip6}/128`, "dev", p.host]);
  run(["ip", "-n", node.ns, "-6", "neigh", "add", ip6, "lladdr", p.mac, "dev", p.host, "nud", "permanent"]);
  p.hostIndex = node.nl.link(p.host)!.index;
  pods[key] = p;
  return p;
}

beforeAll(() => {
  const sw = noDadNetns("mgs");
  run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
  run(["ip", "-n", sw, "link", "set", "br0", "up"]);
  for (const i of [1, 2]) {
    const ns = noDadNetns("mgn");
    inNetns(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    run(["ip", "-n", sw, "link", "add", `n${i}`, "type", "veth", "peer", "name", "eth0", "address", `02:78:00:00:0${i}:ff`, "netns", ns]);
    run(["ip", "-n", sw, "link", "set", `n${i}`, "master", "br0", "up"]);
    run(["ip", "-n", ns, "addr", "add", `10.78.0.${i}/24`, "dev", "eth0"]);
    run(["ip", "-n", ns, "addr", "add", `fd78::${i}/64`, "dev", "eth0", "nodad"]);
    run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    const nl = Netlink.open(netnsPath(ns));
    const plain = PlainPodsMap.create();
    const hostGw = HostGwRoutesMap.create();
    const counters = VerdictCounters.create();
    const maps = { counters: counters.fd, hostGw: hostGw.fd };
    const node: Node = { ns, ip: `10.78.0.${i}`, ip6: `fd78::${i}`, mac: `02:78:00:00:0${i}:ff`, eth0: nl.link("eth0")!.index, nl, plain, hostGw, counters, podProg: loadPodRedirect(plain.fd, maps), underlayProg: loadUnderlayIngress(plain.fd, maps) };
    nodes.push(node);
    // The forward hook drops TCP and UDP: only the fast path can carry them.
    inNetns(ns, ["nft", "add table inet fpt; add chain inet fpt fw { type filter hook forward priority 0; policy accept; }; add rule inet fpt fw meta l4proto { tcp, udp } counter drop"]);
  }
  const [n1, n2] = nodes as [Node, Node];
  run(["ip", "-n", n1.ns, "route", "add", "10.78.2.0/24", "via", n2.ip]);
  run(["ip", "-n", n2.ns, "route", "add", "10.78.1.0/24", "via", n1.ip]);
  run(["ip", "-n", n1.ns, "-6", "route", "add", "fd78:2::/64", "via", n2.ip6]);
  run(["ip", "-n", n2.ns, "-6", "route", "add", "fd78:1::/64", "via", n1.ip6]);
  // Stand-ins on node 1: a pod CIDR whose route leaves by another device (as over VXLAN),
  // one with no route at all, and a destination behind a route with a smaller MTU.
  run(["ip", "-n", n1.ns, "link", "add", "vx0", "type", "veth", "peer", "name", "vx1"]);
  for (const d of ["vx0", "vx1"]) run(["ip", "-n", n1.ns, "link", "set", d, "up"]);
  run(["ip", "-n", n1.ns, "route", "add", "10.78.3.0/24", "dev", "vx0"]);
  run(["ip", "-n", n1.ns, "route", "add", "10.78.2.99/32", "via", n2.ip, "mtu", "lock", "1000"]);
  n1.hostGw.set({ cidr: "10.78.2.0/24", ifindex: n1.eth0 });
  n1.hostGw.set({ cidr: "10.78.3.0/24", ifindex: n1.eth0 });
  n1.hostGw.set({ cidr: "10.78.4.0/24", ifindex: n1.eth0 });
  n2.hostGw.set({ cidr: "10.78.1.0/24", ifindex: n2.eth0 });
  n1.hostGw.set({ cidr: "fd78:2::/64", ifindex: n1.eth0 });
  n2.hostGw.set({ cidr: "fd78:1::/64", ifindex: n2.eth0 });

  addPod(n1, "a", "10.78.1.2", "fd78:1::2", 2);
  addPod(n2, "b", "10.78.2.2", "fd78:2::2", 3);
  addPod(n2, "c", "10.78.2.3", "fd78:2::3", 4);
  for (const [node, p] of [[n1, pods.a], [n2, pods.b]] as const) for (const ip of [p.ip, p.ip6]) node.plain.set({ ip, podMac: p.mac, hostMac: p.hostMac, hostIndex: p.hostIndex });
  for (const [node, devs] of [[n1, [pods.a]], [n2, [pods.b, pods.c]]] as const) {
    for (const p of devs) {
      node.nl.addClsact(p.hostIndex);
      node.nl.addBpfFilter({ index: p.hostIndex, progFd: node.podProg, name: "mncni_pod_redir" });
    }
    node.nl.addClsact(node.eth0);
    node.nl.addBpfFilter({ index: node.eth0, progFd: node.underlayProg, name: "mncni_underlay" });
  }
  // Pod B counts what it receives from A, and what of it arrived with TTL 64 - 2.
  inNetns(pods.b.ns, ["nft", `add table inet ttl; add chain inet ttl in { type filter hook input priority 0; policy accept; }; add rule inet ttl in ip saddr ${pods.a.ip} ip ttl 62 counter; add rule inet ttl in ip saddr ${pods.a.ip} counter; add rule inet ttl in ip6 saddr ${pods.a.ip6} ip6 hoplimit 62 counter; add rule inet ttl in ip6 saddr ${pods.a.ip6} counter`]);
});

afterAll(() => {
  for (const e of echos) e.kill();
  for (const n of nodes) {
    for (const fd of [n.podProg, n.underlayProg]) closeBpfFd(fd);
    n.plain.close();
    n.hostGw.close();
    n.counters.close();
    n.nl.close();
  }
  cleanupNetns();
});

const n1 = () => nodes[0]!;
const n2 = () => nodes[1]!;
const fromA = (over: Partial<Pkt> = {}): Pkt => ({ dstMac: pods.a.hostMac, srcMac: pods.a.mac, src: pods.a.ip, dst: pods.b.ip, ...over });
/** From B on node 2, as it reaches node 1's underlay (addressed to node 1, from node 2). */
const fromB = (over: Partial<Pkt> = {}): Pkt => ({ dstMac: n1().mac, srcMac: n2().mac, src: pods.b.ip, dst: pods.a.ip, ttl: 63, ...over });
const runPod = (p: Uint8Array, gsoSize?: number) => counted(n1().counters, () => withNetns(netnsPath(n1().ns), () => progTestRun(n1().podProg, p, pods.a.hostIndex, { gsoSize })));
const runUnderlay = (p: Uint8Array, dev = n1().eth0) => counted(n1().counters, () => withNetns(netnsPath(n1().ns), () => progTestRun(n1().underlayProg, p, dev)));

describe("run by the kernel on crafted packets, on node 1", () => {
  test("pod A to pod B on node 2: out of the underlay (redirect_neigh), TTL - 1 with a valid checksum; counted as redirect_remote", () => {
    const { r, counted } = runPod(packet(fromA()));
    expect(counted).toEqual({ redirect_remote: 1 });
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    expect(r.data[22]).toBe(63);
    expect(checksum(r.data.subarray(14, 34))).toBe(0);
  });

  test("within the route's MTU: redirected; above it: the stack (which fragments or answers Fragmentation Needed)", () => {
    // IPv4 total length 1000 fits the locked route MTU 1000; 1001 does not.
    expect(runPod(packet(fromA({ dst: "10.78.2.99", payload: 980 }))).counted).toEqual({ redirect_remote: 1 });
    const big = packet(fromA({ dst: "10.78.2.99", payload: 981 }));
    const { r, counted } = runPod(big);
    expect(r.retval).toBe(TC_ACT_STACK);
    expect([...r.data]).toEqual([...big]);
    expect(counted).toEqual({ mtu: 1 });
  });

  test("a GSO packet is checked by its segments' size: IPv4 + TCP headers (40) + gso_size against the route's MTU", () => {
    // A TCP header with data offset 5 (20 bytes) and some payload; the segments, not the whole packet, must fit.
    const tcp = (dst: string) => {
      const p = packet(fromA({ dst, proto: 6, payload: 120 }));
      p[34 + 12] = 0x50;
      return p;
    };
    expect(runPod(tcp("10.78.2.99"), 960).counted).toEqual({ redirect_remote: 1 });
    expect(runPod(tcp("10.78.2.99"), 961).counted).toEqual({ mtu: 1 });
    // The same segments on the underlay's own MTU (1500) fit.
    expect(runPod(tcp(pods.b.ip), 1400).counted).toEqual({ redirect_remote: 1 });
    expect(runPod(tcp(pods.b.ip), 1461).counted).toEqual({ mtu: 1 });
  });

  const podToStack: [string, () => Pkt, string][] = [
    ["a destination in no host-gw pod CIDR (the stack routes it, masquerading if it leaves the cluster)", () => fromA({ dst: "10.78.9.9" }), "not_plain_destination"],
    ["a host-gw pod CIDR whose route leaves by another device (as a VXLAN peer's)", () => fromA({ dst: "10.78.3.5" }), "not_host_gw_route"],
    ["a host-gw pod CIDR with no route", () => fromA({ dst: "10.78.4.5" }), "no_route"],
    ["a frame not addressed to the gateway", () => fromA({ dstMac: "02:78:00:00:00:09" }), "not_via_gateway"],
    ["a forged source", () => fromA({ src: "10.78.1.77" }), "not_plain_source"],
    ["TTL 1", () => fromA({ ttl: 1 }), "ttl"],
    ["ICMP", () => fromA({ proto: 1 }), "icmp"],
  ];
  for (const [name, p, verdict] of podToStack) {
    test(`pod A: to the stack, untouched, counted as ${verdict}: ${name}`, () => {
      const sent = packet(p());
      const { r, counted } = runPod(sent);
      expect(r.retval).toBe(TC_ACT_STACK);
      expect([...r.data]).toEqual([...sent]);
      expect(counted).toEqual({ [verdict]: 1 });
    });
  }

  test("underlay: pod B to pod A, into A's namespace (redirect_peer), TTL - 1, the MACs of A's link; counted as redirect_from_underlay", () => {
    const { r, counted } = runUnderlay(packet(fromB()));
    expect(counted).toEqual({ redirect_from_underlay: 1 });
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    expect(r.data[22]).toBe(62);
    expect(checksum(r.data.subarray(14, 34))).toBe(0);
    expect(hexMac(r.data.subarray(0, 6))).toBe(pods.a.mac);
    expect(hexMac(r.data.subarray(6, 12))).toBe(pods.a.hostMac);
  });

  test("IPv6: pod A to pod B out of the underlay, and B to A in from it, hop limit - 1", () => {
    const out = runPod(packet(fromA({ src: pods.a.ip6, dst: pods.b.ip6 })));
    expect(out.counted).toEqual({ redirect_remote: 1 });
    expect(out.r.retval).toBe(TC_ACT_REDIRECT);
    expect(out.r.data[21]).toBe(63);
    const inn = runUnderlay(packet(fromB({ src: pods.b.ip6, dst: pods.a.ip6 })));
    expect(inn.counted).toEqual({ redirect_from_underlay: 1 });
    expect(inn.r.retval).toBe(TC_ACT_REDIRECT);
    expect(inn.r.data[21]).toBe(62);
    expect(hexMac(inn.r.data.subarray(0, 6))).toBe(pods.a.mac);
  });

  test("IPv6 to the stack: a destination outside the host-gw CIDRs, ICMPv6 on the underlay (neighbour discovery)", () => {
    expect(runPod(packet(fromA({ src: pods.a.ip6, dst: "fd78:9::1" }))).counted).toEqual({ not_plain_destination: 1 });
    expect(runUnderlay(packet(fromB({ src: pods.b.ip6, dst: pods.a.ip6, proto: 58 }))).counted).toEqual({ icmp: 1 });
  });

  const underlayToStack: [string, () => Pkt, string, (() => number)?][] = [
    ["a frame for another MAC", () => fromB({ dstMac: "02:78:00:00:0f:ff" }), "not_for_node"],
    ["a source outside the host-gw pod CIDRs (the outside, a masqueraded flow's reply)", () => fromB({ src: "10.99.0.1" }), "not_from_pod_network"],
    ["a destination that is not a plain pod here", () => fromB({ dst: "10.78.1.9" }), "not_plain_destination"],
    ["a remote pod's source arriving on another device than its route's", () => fromB({ dstMac: "00:00:00:00:00:00" }), "spoofed", () => n1().nl.link("vx1")!.index],
    ["TTL 1", () => fromB({ ttl: 1 }), "ttl"],
    ["a fragment", () => fromB({ frag: 0x2000 }), "fragment"],
    ["neither TCP nor UDP (GRE: conntrack could translate it, the lookup cannot see it)", () => fromB({ proto: 47 }), "not_tcp_udp"],
  ];
  for (const [name, p, verdict, dev] of underlayToStack) {
    test(`underlay: to the stack, untouched, counted as ${verdict}: ${name}`, () => {
      const pkt = p();
      // On another device the frame is addressed to that device's MAC, so that it is for the node.
      if (dev) pkt.dstMac = n1().nl.link(dev())!.mac!;
      const sent = packet(pkt);
      const { r, counted } = runUnderlay(sent, dev?.());
      expect(r.retval).toBe(TC_ACT_STACK);
      expect([...r.data]).toEqual([...sent]);
      expect(counted).toEqual({ [verdict]: 1 });
    });
  }
});

async function probe(from: Pod, to: string, proto: "udp" | "tcp", n = 1): Promise<{ ok: boolean; id?: string; seen?: string }[]> {
  const r = run(["ip", "netns", "exec", from.ns, BUN, ECHO, "probe", proto, `${to}:7777`, String(n)], { allowFail: true });
  return JSON.parse(r.stdout.trim().split("\n").pop() || "[]");
}

async function serve(p: Pod, id: string): Promise<void> {
  const echo = Bun.spawn(["ip", "netns", "exec", p.ns, BUN, ECHO, "serve", id, "7777"], { stdin: "ignore", stdout: "pipe", stderr: "inherit", env: { ...process.env, ECHO_HOST: "::" } });
  echos.push(echo);
  const first = await echo.stdout.getReader().read();
  expect(new TextDecoder().decode(first.value)).toContain("ready");
}

function nftCount(ns: string, table: string, chain: string): number[] {
  const rules = (JSON.parse(inNetns(ns, ["nft", "-j", "list", "chain", "inet", table, chain]).stdout).nftables as any[]).filter((i) => i.rule);
  return rules.map((r) => r.rule.expr.find((e: any) => e.counter).counter.packets as number);
}

describe("real traffic between the nodes", () => {
  test("pods A and B talk over UDP and TCP, both ways, although both nodes' forward hooks drop TCP and UDP; B sees A's own address and TTL 62", async () => {
    await serve(pods.b, "b");
    await serve(pods.a, "a");
    const before = nodes.map((n) => ({ out: n.counters.get("redirect_remote"), in: n.counters.get("redirect_from_underlay") }));
    expect(await probe(pods.a, pods.b.ip, "udp", 2)).toEqual([{ ok: true, id: "b", seen: pods.a.ip }, { ok: true, id: "b", seen: pods.a.ip }]);
    expect(await probe(pods.a, pods.b.ip, "tcp", 2)).toEqual([{ ok: true, id: "b", seen: pods.a.ip }, { ok: true, id: "b", seen: pods.a.ip }]);
    expect(await probe(pods.b, pods.a.ip, "tcp", 1)).toEqual([{ ok: true, id: "a", seen: pods.b.ip }]);
    // Nothing was forwarded by a node's stack, and each node sent and took in the pair's packets.
    for (const n of nodes) expect(nftCount(n.ns, "fpt", "fw")).toEqual([0]);
    nodes.forEach((n, i) => {
      expect(n.counters.get("redirect_remote") - before[i]!.out).toBeGreaterThanOrEqual(2 + 2 * 3);
      expect(n.counters.get("redirect_from_underlay") - before[i]!.in).toBeGreaterThanOrEqual(2 + 2 * 3);
    });
    const [ttl62, all] = nftCount(pods.b.ns, "ttl", "in");
    expect(all).toBeGreaterThanOrEqual(2 + 2 * 3);
    expect(ttl62).toBe(all!);
  });

  test("IPv6: the same, both ways, hop limit 62 in B", async () => {
    const before = nodes.map((n) => n.counters.get("redirect_remote"));
    expect(await probe(pods.a, pods.b.ip6, "udp", 2)).toEqual([{ ok: true, id: "b", seen: pods.a.ip6 }, { ok: true, id: "b", seen: pods.a.ip6 }]);
    expect(await probe(pods.a, pods.b.ip6, "tcp", 2)).toEqual([{ ok: true, id: "b", seen: pods.a.ip6 }, { ok: true, id: "b", seen: pods.a.ip6 }]);
    expect(await probe(pods.b, pods.a.ip6, "tcp", 1)).toEqual([{ ok: true, id: "a", seen: pods.b.ip6 }]);
    for (const n of nodes) expect(nftCount(n.ns, "fpt", "fw")).toEqual([0]);
    nodes.forEach((n, i) => expect(n.counters.get("redirect_remote") - before[i]!).toBeGreaterThanOrEqual(2 + 2 * 3));
    const [, , hop62, all6] = nftCount(pods.b.ns, "ttl", "in");
    expect(all6).toBeGreaterThanOrEqual(2 + 2 * 3);
    expect(hop62).toBe(all6!);
  });

  test("what the programs leave to the stack: ICMP flows (the stack forwards it, TTL 62 too); a forged source and the non-plain pod stay dropped", async () => {
    const [ttl62, all, hop62, all6] = nftCount(pods.b.ns, "ttl", "in");
    const icmp = n1().counters.get("icmp");
    expect(inNetns(pods.a.ns, ["ping", "-c1", "-W5", pods.b.ip], { allowFail: true }).code).toBe(0);
    expect(inNetns(pods.a.ns, ["ping", "-6", "-c1", "-W5", pods.b.ip6], { allowFail: true }).code).toBe(0);
    expect(n1().counters.get("icmp")).toBeGreaterThan(icmp + 1);
    expect(nftCount(pods.b.ns, "ttl", "in")).toEqual([ttl62! + 1, all! + 1, hop62! + 1, all6! + 1]);

    // Pod A sends with an address that is not its own.
    run(["ip", "-n", pods.a.ns, "addr", "add", "10.78.1.77/32", "dev", "eth0"]);
    run(["ip", "-n", pods.a.ns, "route", "add", `${pods.b.ip}/32`, "via", "169.254.1.1", "dev", "eth0", "src", "10.78.1.77"]);
    try {
      const forged = n1().counters.get("not_plain_source");
      expect((await probe(pods.a, pods.b.ip, "udp"))[0]?.ok).toBe(false);
      expect(n1().counters.get("not_plain_source")).toBeGreaterThan(forged);
    } finally {
      run(["ip", "-n", pods.a.ns, "route", "del", `${pods.b.ip}/32`]);
      run(["ip", "-n", pods.a.ns, "addr", "del", "10.78.1.77/32", "dev", "eth0"]);
    }

    // Pod C (not plain): node 1 sends to it as to any remote pod; node 2's underlay leaves it to the stack.
    await serve(pods.c, "c");
    const notPlain = n2().counters.get("not_plain_destination");
    expect((await probe(pods.a, pods.c.ip, "udp"))[0]?.ok).toBe(false);
    expect(n2().counters.get("not_plain_destination")).toBeGreaterThan(notPlain);
    expect(nftCount(n2().ns, "fpt", "fw")[0]).toBeGreaterThan(0);
  });

  test("a Service's reply takes the stack: A connects to a ClusterIP that node 1 DNATs to B; B's answers, plain pod to plain pod by address, are a flow node 1's conntrack knows, so its underlay program leaves them to the stack, which translates them back", async () => {
    // What kube-proxy or mncni's proxy does, in miniature: DNAT at node 1's prerouting, and
    // the forward hook accepts the translated flow (both ways) before it drops TCP and UDP.
    inNetns(n1().ns, ["nft", `add table ip svc; add chain ip svc pre { type nat hook prerouting priority -100; }; add rule ip svc pre ip daddr 10.78.9.9 tcp dport 7777 dnat to ${pods.b.ip}:7777; insert rule inet fpt fw ct status dnat counter accept`]);
    const known = n1().counters.get("conntrack");
    expect(await probe(pods.a, "10.78.9.9", "tcp", 2)).toEqual([{ ok: true, id: "b", seen: pods.a.ip }, { ok: true, id: "b", seen: pods.a.ip }]);
    // B's node redirected A's packets (its conntrack never saw them); node 1 left B's to its stack.
    expect(n1().counters.get("conntrack") - known).toBeGreaterThanOrEqual(2 * 2);
    const [accepted] = nftCount(n1().ns, "fpt", "fw");
    expect(accepted).toBeGreaterThanOrEqual(2 * 2 * 2);
  });
});
