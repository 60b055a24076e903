// The fast path's pod-to-pod program (src/kernel/bpf/) on the real kernel, in throwaway
// namespaces: a "host" namespace with three pods on veth pairs, routed (/32 and /128 routes,
// a link-local gateway), the program attached to each host-side device's clsact ingress.
//   - the kernel runs the program on crafted packets (BPF_PROG_TEST_RUN): what it redirects,
//     what it leaves to the stack, and what it does to the packet (TTL, checksum, MACs);
//   - real traffic: with forwarding off in the host namespace only the fast path can carry a
//     packet, so a plain pair talks and everything the program must leave to the stack
//     (ICMP, a forged source, a pod outside the plain map) does not arrive; with forwarding on
//     and a drop rule for the non-plain pod (what a policy would do) that pod stays unreachable;
//   - `tc -j filter show` and `bpftool` are the independent view of what is attached, and of
//     nothing left once the filters are deleted.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { Netlink, withNetns } from "../../src/kernel/index.ts";
import { Asm, BpfError, PROG_TYPE, PlainPodsMap, R, type Verdict, VerdictCounters, closeBpfFd, fdById, loadPodRedirect, progInfo, progLoad, progTestRun } from "../../src/kernel/bpf/index.ts";
import { type Pkt, TC_ACT_STACK, TC_ACT_REDIRECT, checksum, counted, hexMac, packet } from "./bpf-packets.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";

setDefaultTimeout(60_000);

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const ECHO = resolve(import.meta.dir, "../helpers/svc-echo.ts");

interface Pod { ns: string; ip: string; ip6: string; mac: string; host: string; hostMac: string; hostIndex: number }

let H = "";
const pods: Pod[] = [];
let nl: Netlink;
let plain: PlainPodsMap;
let verdicts: VerdictCounters;
let prog = -1;
let echo: Bun.Subprocess<"ignore", "pipe", "inherit"> | undefined;

beforeAll(() => {
  H = createNetns("mbh");
  inNetns(H, ["sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]);
  for (const n of [2, 3, 4]) {
    const ns = createNetns("mbp");
    const p = { ns, ip: `10.77.0.${n}`, ip6: `fd77::${n}`, mac: `02:77:00:00:00:0${n}`, host: `h${n}`, hostMac: `02:77:00:00:01:0${n}`, hostIndex: 0 };
    run(["ip", "-n", H, "link", "add", p.host, "address", p.hostMac, "type", "veth", "peer", "name", "eth0", "address", p.mac, "netns", ns]);
    run(["ip", "-n", H, "link", "set", p.host, "up"]);
    run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    run(["ip", "-n", ns, "addr", "add", `${p.ip}/32`, "dev", "eth0"]);
    run(["ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
    run(["ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
    run(["ip", "-n", ns, "neigh", "add", "169.254.1.1", "lladdr", p.hostMac, "dev", "eth0", "nud", "permanent"]);
    run(["ip", "-n", H, "route", "add", `${p.ip}/32`, "dev", p.host]);
    run(["ip", "-n", H, "neigh", "add", p.ip, "lladdr", p.mac, "dev", p.host, "nud", "permanent"]);
    // IPv6: the same, with a link-local gateway as routed pods have.
    run(["ip", "-n", ns, "addr", "add", `${p.ip6}/128`, "dev", "eth0", "nodad"]);
    run(["ip", "-n", ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
    run(["ip", "-n", ns, "-6", "neigh", "add", "fe80::1", "lladdr", p.hostMac, "dev", "eth0", "nud", "permanent"]);
    run(["ip", "-n", H, "-6", "route", "add", `${p.ip6}/128`, "dev", p.host]);
    run(["ip", "-n", H, "-6", "neigh", "add", p.ip6, "lladdr", p.mac, "dev", p.host, "nud", "permanent"]);
    pods.push(p);
  }
  nl = Netlink.open(netnsPath(H));
  for (const p of pods) p.hostIndex = nl.link(p.host)!.index;
  plain = PlainPodsMap.create();
  // Pods 2 and 3 are plain; pod 4 stands for one a policy selects (not in the map).
  for (const p of pods.slice(0, 2)) for (const ip of [p.ip, p.ip6]) plain.set({ ip, podMac: p.mac, hostMac: p.hostMac, hostIndex: p.hostIndex });
  verdicts = VerdictCounters.create();
  prog = loadPodRedirect(plain.fd, { counters: verdicts.fd });
});

afterAll(() => {
  if (echo) echo.kill();
  nl?.close();
  if (prog >= 0) closeBpfFd(prog);
  plain?.close();
  verdicts?.close();
  cleanupNetns();
});

const [a, b, c] = [0, 1, 2].map((i) => () => pods[i]!);

const fromA = (over: Partial<Pkt> = {}): Pkt => ({ dstMac: a().hostMac, srcMac: a().mac, src: a().ip, dst: b().ip, ...over });
const fromA6 = (over: Partial<Pkt> = {}): Pkt => fromA({ src: a().ip6, dst: b().ip6, ...over });
const runOn = (p: Uint8Array, dev = a().hostIndex) => withNetns(netnsPath(H), () => progTestRun(prog, p, dev));
const runCounted = (p: Uint8Array, dev?: number) => counted(verdicts, () => runOn(p, dev));
const counted_ = <T>(fn: () => T) => counted(verdicts, fn);

test("a program the verifier refuses: the error names the errno and carries the verifier's log", () => {
  // Reads the packet without checking its end.
  const insns = new Asm().load("w", R.r2, R.r1, 76).load("b", R.r0, R.r2, 0).exit().assemble();
  let err: unknown;
  try {
    closeBpfFd(progLoad({ type: PROG_TYPE.SCHED_CLS, insns, license: "GPL", name: "mncni_bad" }));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(BpfError);
  expect((err as BpfError).code).toBe("EACCES");
  expect((err as BpfError).log).toContain("invalid access to packet");
});

describe("the program, run by the kernel on crafted packets", () => {
  test("repeat: the kernel runs it that many times on the same packet, each run on what the last left, and times a run", () => {
    const { r, counted } = counted_(() => withNetns(netnsPath(H), () => progTestRun(prog, packet(fromA()), a().hostIndex, { repeat: 20 })));
    // The first run redirects and writes the destination link's MACs: the next 19 see a frame
    // whose source MAC is not A's (what bench/fast-path-programs.ts times with one run a call).
    expect(counted).toEqual({ redirect_local: 1, spoofed: 19 });
    expect(r.retval).toBe(TC_ACT_STACK);
    expect(r.duration).toBeGreaterThan(0);
  });

  test("plain pod to plain pod, routed: redirected, TTL - 1 with a valid checksum, MACs of the destination's link; counted as redirect_local", () => {
    const { r, counted } = runCounted(packet(fromA()));
    expect(counted).toEqual({ redirect_local: 1 });
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    expect(r.data[22]).toBe(63);
    expect(checksum(r.data.subarray(14, 34))).toBe(0);
    expect(hexMac(r.data.subarray(0, 6))).toBe(b().mac);
    expect(hexMac(r.data.subarray(6, 12))).toBe(b().hostMac);
  });

  test("a frame addressed to the destination pod's own MAC (one bridge) is switched unchanged", () => {
    const sent = packet(fromA({ dstMac: b().mac }));
    const r = runOn(sent);
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    expect([...r.data]).toEqual([...sent]);
  });

  test("IPv6, plain pod to plain pod, routed: redirected, hop limit - 1, MACs of the destination's link", () => {
    const { r, counted } = runCounted(packet(fromA6()));
    expect(counted).toEqual({ redirect_local: 1 });
    expect(r.retval).toBe(TC_ACT_REDIRECT);
    expect(r.data[21]).toBe(63);
    expect(hexMac(r.data.subarray(0, 6))).toBe(b().mac);
    expect(hexMac(r.data.subarray(6, 12))).toBe(b().hostMac);
  });

  const toStack: [string, () => Pkt, Verdict, number?][] = [
    ["IPv6: ICMPv6 (neighbour discovery, errors)", () => fromA6({ proto: 58 }), "icmp"],
    ["IPv6: a fragment header", () => fromA6({ proto: 44 }), "fragment"],
    ["IPv6: a hop-by-hop options header", () => fromA6({ proto: 0 }), "ip_header"],
    ["IPv6: hop limit 1", () => fromA6({ ttl: 1 }), "ttl"],
    ["IPv6: a forged source address", () => fromA6({ src: "fd77::9" }), "not_plain_source"],
    ["IPv6: another plain pod's source address", () => fromA6({ src: b().ip6, dst: b().ip6 }), "spoofed"],
    ["IPv6: a destination that is not plain", () => fromA6({ dst: c().ip6 }), "not_plain_destination"],
    ["a forged source address (another plain pod's)", () => fromA({ src: "10.77.0.3", dst: "10.77.0.3" }), "spoofed"],
    ["a forged source address (not a pod's)", () => fromA({ src: "10.77.9.9" }), "not_plain_source"],
    ["a forged source MAC", () => fromA({ srcMac: "02:66:00:00:00:01" }), "spoofed"],
    ["the right source from another device", () => fromA(), "spoofed", 0],
    ["a destination that is not plain (a policy selects it)", () => fromA({ dst: "10.77.0.4" }), "not_plain_destination"],
    ["a frame for a third MAC (a bridge would switch it there, not route it)", () => fromA({ dstMac: "02:77:00:00:00:09" }), "not_via_gateway"],
    ["ICMP", () => fromA({ proto: 1 }), "icmp"],
    ["a first fragment (MF)", () => fromA({ frag: 0x2000 }), "fragment"],
    ["a later fragment (offset)", () => fromA({ frag: 0x0010 }), "fragment"],
    ["TTL 1 (the stack answers Time Exceeded)", () => fromA({ ttl: 1 }), "ttl"],
    ["IP options", () => fromA({ ihl: 6 }), "ip_header"],
    ["not IP (ARP)", () => fromA({ etherType: 0x0806 }), "not_ip"],
  ];
  for (const [name, p, verdict, dev] of toStack) {
    test(`to the stack, untouched, counted as ${verdict}: ${name}`, () => {
      const sent = packet(p());
      const { r, counted } = runCounted(sent, dev === 0 ? b().hostIndex : undefined);
      expect(r.retval).toBe(TC_ACT_STACK);
      expect([...r.data]).toEqual([...sent]);
      expect(counted).toEqual({ [verdict]: 1 });
    });
  }
  // A packet shorter than Ethernet + IPv4 cannot be run (the kernel refuses it); the verifier
  // refuses the program if it reads one without the bounds check.
});

async function probe(from: Pod, to: string, proto: "udp" | "tcp", n = 1): Promise<{ ok: boolean; id?: string; seen?: string }[]> {
  const r = run(["ip", "netns", "exec", from.ns, BUN, ECHO, "probe", proto, `${to}:7777`, String(n)], { allowFail: true });
  return JSON.parse(r.stdout.trim().split("\n").pop() || "[]");
}

function attachedNames(dev: string): string[] {
  const out = JSON.parse(inNetns(H, ["tc", "-j", "filter", "show", "dev", dev, "ingress"]).stdout || "[]") as any[];
  return out.filter((f) => f.kind === "bpf" && f.options?.bpf_name).map((f) => `${f.options.bpf_name}${f.options["direct-action"] ? " da" : ""}`);
}

describe("attached to the pods' host devices", () => {
  let ids: { prog: number; maps: number[] } | undefined;

  test("attached: tc lists a direct-action bpf filter on each host device, and our reader finds it", () => {
    for (const p of pods) {
      nl.addClsact(p.hostIndex);
      nl.addBpfFilter({ index: p.hostIndex, progFd: prog, name: "mncni_pod_redir" });
    }
    for (const p of pods) {
      expect(attachedNames(p.host)[0]).toStartWith("mncni_pod_redir");
      expect(attachedNames(p.host)[0]).toEndWith(" da");
      const [f] = nl.bpfFilters(p.hostIndex);
      expect(f?.progId).toBe(progInfo(prog).id);
      expect(f?.directAction).toBe(true);
    }
    const info = progInfo(prog);
    ids = { prog: info.id, maps: info.mapIds };
    expect(ids.maps).toHaveLength(2); // the plain pods and the verdict counters
    const shown = JSON.parse(run(["bpftool", "-j", "prog", "show", "id", String(ids.prog)]).stdout);
    expect(shown.map_ids).toEqual(ids.maps);
  });

  test("with forwarding off in the host namespace, a plain pair talks (UDP and TCP, both ways) only through the fast path", async () => {
    echo = Bun.spawn(["ip", "netns", "exec", b().ns, BUN, ECHO, "serve", "b", "7777"], { stdin: "ignore", stdout: "pipe", stderr: "inherit", env: { ...process.env, ECHO_HOST: "::" } });
    const reader = echo.stdout.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("ready");
    const redirected = verdicts.get("redirect_local");
    expect(await probe(a(), b().ip, "udp", 2)).toEqual([{ ok: true, id: "b", seen: a().ip }, { ok: true, id: "b", seen: a().ip }]);
    expect(await probe(a(), b().ip, "tcp", 2)).toEqual([{ ok: true, id: "b", seen: a().ip }, { ok: true, id: "b", seen: a().ip }]);
    // Each UDP request and answer, and every TCP segment both ways (handshake included), was counted.
    expect(verdicts.get("redirect_local") - redirected).toBeGreaterThanOrEqual(4 + 2 * 3);
  });

  test("IPv6 too, with IPv6 forwarding off: a plain pair talks over UDP and TCP; ICMPv6 (the stack's) does not pass", async () => {
    const redirected = verdicts.get("redirect_local");
    expect(await probe(a(), b().ip6, "udp", 2)).toEqual([{ ok: true, id: "b", seen: a().ip6 }, { ok: true, id: "b", seen: a().ip6 }]);
    expect(await probe(a(), b().ip6, "tcp", 2)).toEqual([{ ok: true, id: "b", seen: a().ip6 }, { ok: true, id: "b", seen: a().ip6 }]);
    expect(verdicts.get("redirect_local") - redirected).toBeGreaterThanOrEqual(4 + 2 * 3);
    const icmp = verdicts.get("icmp");
    expect(inNetns(a().ns, ["ping", "-6", "-c1", "-W1", b().ip6], { allowFail: true }).code).not.toBe(0);
    expect(verdicts.get("icmp")).toBeGreaterThan(icmp);
  });

  test("what the program leaves to the stack does not arrive while the stack cannot forward: ICMP, a forged source, a non-plain pod", async () => {
    expect(inNetns(a().ns, ["ping", "-c1", "-W1", b().ip], { allowFail: true }).code).not.toBe(0);
    // Pod 2 sends with pod 4's address as its source.
    run(["ip", "-n", a().ns, "addr", "add", `${c().ip}/32`, "dev", "eth0"]);
    run(["ip", "-n", a().ns, "route", "add", `${b().ip}/32`, "via", "169.254.1.1", "dev", "eth0", "src", c().ip]);
    try {
      expect((await probe(a(), b().ip, "udp"))[0]?.ok).toBe(false);
    } finally {
      run(["ip", "-n", a().ns, "route", "del", `${b().ip}/32`]);
      run(["ip", "-n", a().ns, "addr", "del", `${c().ip}/32`, "dev", "eth0"]);
    }
    expect((await probe(b(), c().ip, "udp"))[0]?.ok).toBe(false);
  });

  test("with forwarding on, the stack carries ICMP; a dropped non-plain pod stays dropped while the plain pair still talks", async () => {
    inNetns(H, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    try {
      inNetns(H, ["nft", "add table ip mbtest; add chain ip mbtest fw { type filter hook forward priority 0; policy accept; }; add rule ip mbtest fw ip daddr 10.77.0.4 counter drop; add rule ip mbtest fw ip daddr 10.77.0.3 counter"]);
      expect(inNetns(a().ns, ["ping", "-c1", "-W2", b().ip], { allowFail: true }).code).toBe(0);
      expect((await probe(a(), c().ip, "udp"))[0]?.ok).toBe(false);
      const before = nftCounters();
      expect((await probe(a(), b().ip, "tcp", 2)).every((x) => x.ok)).toBe(true);
      // The stack's forward hook saw the denied packet, and none of the plain pair's TCP.
      const after = nftCounters();
      expect(after.drop).toBeGreaterThan(0);
      expect(after.toB).toBe(before.toB);
    } finally {
      inNetns(H, ["sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"]);
    }
  });

  test("nothing left: deleting the filters and closing our fds frees the program and the map", () => {
    for (const p of pods) {
      nl.delIngressFilter(p.hostIndex, 1);
      nl.delQdisc(p.hostIndex, 0xfffffff1);
      expect(attachedNames(p.host)).toEqual([]);
      expect(nl.qdiscs(p.hostIndex).map((q) => q.kind)).not.toContain("clsact");
    }
    closeBpfFd(prog);
    prog = -1;
    plain.close();
    plain = undefined as unknown as PlainPodsMap;
    verdicts.close();
    verdicts = undefined as unknown as VerdictCounters;
    // Freed asynchronously (RCU, a worker): waited for with a deadline generous at high load.
    const gone = (kind: "prog" | "map", id: number) => {
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        try {
          closeBpfFd(fdById(kind, id));
        } catch {
          return true;
        }
        Bun.sleepSync(20);
      }
      return false;
    };
    expect(gone("prog", ids!.prog)).toBe(true);
    for (const id of ids!.maps) expect(gone("map", id)).toBe(true);
    expect(run(["bpftool", "prog", "show", "id", String(ids!.prog)], { allowFail: true }).code).not.toBe(0);
  });
});

function nftCounters(): { drop: number; toB: number } {
  const rules = (JSON.parse(inNetns(H, ["nft", "-j", "list", "chain", "ip", "mbtest", "fw"]).stdout).nftables as any[]).filter((i) => i.rule);
  const count = (r: any) => r.rule.expr.find((e: any) => e.counter).counter.packets as number;
  return { drop: count(rules[0]), toB: count(rules[1]) };
}
