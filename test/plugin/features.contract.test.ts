// The per-pod feature contract: every feature of the plugin's list (src/plugin/features/list.ts)
// through both modes, with the compiled binary over the CNI protocol, in throwaway
// namespaces. For each feature and mode: ADD shows the feature's part in the kernel (nft -j,
// tc -j, ip -j, conntrack) and in real traffic; CHECK passes and fails once that part is
// broken; DEL removes it (twice in a row too), also when the DEL's runtimeConfig is
// invalid; GC removes what a pod gone without DEL left; an ADD that fails later leaves
// nothing of it. A feature added to the list without a contract here fails the suite.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { FEATURES } from "../../src/plugin/features/list.ts";
import { closeBpfFd, fdById, PlainPodsMap } from "../../src/kernel/bpf/index.ts";
import { run } from "../helpers/netns.ts";
import { detachTcx, ingressPrograms } from "../helpers/ingress-programs.ts";
import { antiSpoofEntries, antiSpoofTable, destroyAllNodes, echoesDelivered, link, reaches, sysctl, tcpExchange, TestNode, UPLINK, type Mode } from "./fixture.ts";

setDefaultTimeout(90_000);
afterAll(destroyAllNodes);

const BRIDGE = "mnfc0";

/** One pod of a contract: what the test knows of it without asking the plugin. */
interface Pod {
  pod: string;
  id: string;
  network: string;
  addr: string;
  /** The host veth's name, derived as the plugin documents it (mnc + 12 hex of sha256). */
  veth: string;
}

interface Contract {
  /** Config fields and runtimeConfig that turn the feature on; `n`: a number unique to the pod. */
  on(n: number): { extra?: Record<string, unknown>; runtimeConfig?: Record<string, unknown> };
  /** Before ADD (conntrack: a flow of the address the pod is about to get). */
  prime?(node: TestNode, p: Pod): void;
  /** After ADD: the feature's part, as the kernel shows it and as traffic finds it. */
  present(node: TestNode, p: Pod, mode: Mode): Promise<void>;
  /** Breaks the feature's part so that CHECK must fail; absent: the feature checks nothing. */
  tamper?(node: TestNode, p: Pod, mode: Mode): void;
  /** Nothing of the pod's part is left. */
  gone(node: TestNode, p: Pod, mode: Mode): void | Promise<void>;
  /** Why GC leaves this feature's part of a pod gone without DEL (absent: GC removes it). */
  gcLeaves?: string;
  /** Why no ADD can fail after this feature attached (absent: one that fails rolls it back). */
  noLaterFailure?: string;
}

const nft = (ns: string, args: string[]) => run(["ip", "netns", "exec", ns, "nft", ...args], { allowFail: true });
const nftJson = (ns: string, args: string[]): any[] => {
  const r = nft(ns, ["-j", ...args]);
  return r.code === 0 ? (JSON.parse(r.stdout).nftables as any[]) : [];
};
const setElems = (ns: string, family: string, table: string, set: string, kind: "set" | "map" = "set"): string[] =>
  nftJson(ns, ["list", kind, family, table, set]).flatMap((o) => (o.set?.elem ?? o.map?.elem ?? []).map((e: unknown) => JSON.stringify(e)));
const conntrackOf = (ns: string, addr: string) => run(["ip", "netns", "exec", ns, "conntrack", "-L", "-s", addr], { allowFail: true }).stdout;
const insertFlow = (ns: string, addr: string, sport: number) =>
  run(["ip", "netns", "exec", ns, "conntrack", "-I", "-s", addr, "-d", UPLINK.client[4], "-p", "udp", "--sport", String(sport), "--dport", "9", "-t", "120"]);
const qdiscs = (ns: string, dev: string): any[] => {
  const r = run(["ip", "netns", "exec", ns, "tc", "-j", "qdisc", "show", "dev", dev], { allowFail: true });
  return r.code === 0 ? JSON.parse(r.stdout) : [];
};
/** The bpf programs on a device's ingress ("name tcx", or "name da" for a direct-action clsact filter); none when the device is gone. */
const bpfIngress = (ns: string, dev: string): string[] => ingressPrograms(ns, dev).map((p) => `${p.name} ${p.hook === "tcx" ? "tcx" : p.da ? "da" : "clsact"}`);
/** What the plugin recorded of the fast path's objects for a network (beside its IPAM reservations). */
const fastPathRecord = (node: TestNode, network: string): { prog: number; map: number } | undefined => {
  try {
    return JSON.parse(readFileSync(`${node.dataDir}/${network}/.mncni-fast-path.json`, "utf8")) as { prog: number; map: number };
  } catch {
    return undefined;
  }
};
const fastPathProg = (node: TestNode, network: string) => fastPathRecord(node, network)?.prog;
/** What the fastPath contract holds open as an agent would (program and map), by pod address. */
const agentHolds = new Map<string, { map: PlainPodsMap; prog: number }>();
/** Whether the kernel still has a program (bpftool's view); freed programs go after an RCU grace period. */
async function progLives(id: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (run(["bpftool", "prog", "show", "id", String(id)], { allowFail: true }).code !== 0) return false;
    await Bun.sleep(25);
  }
  return true;
}
const ifbOf = (veth: string) => `mnb${veth.slice(3)}`;
const hostPortOf = (n: number) => 21000 + n;

/** The source address a UDP datagram from `pod` to the client arrives with. */
async function sourceSeenByClient(node: TestNode, pod: string): Promise<string> {
  const srv = Bun.spawn(["ip", "netns", "exec", node.client, "timeout", "8", "python3", "-c",
    `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("",9999));print("up",flush=True);d,a=s.recvfrom(100);print(a[0],flush=True)`], { stdout: "pipe" });
  const reader = srv.stdout.getReader();
  let out = "";
  while (!out.includes("up\n")) out += new TextDecoder().decode((await reader.read()).value);
  for (let i = 0; i < 20 && !out.split("\n")[1]; i++) {
    run(["ip", "netns", "exec", pod, "python3", "-c", `import socket;socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b"x",("${UPLINK.client[4]}",9999))`]);
    const r = await Promise.race([reader.read(), Bun.sleep(300).then(() => undefined)]);
    if (r?.value) out += new TextDecoder().decode(r.value);
  }
  srv.kill();
  await srv.exited;
  return out.split("\n")[1] ?? "";
}

const CONTRACTS: Record<string, Contract> = {
  antiSpoofing: {
    on: () => ({ extra: { antiSpoofing: true } }),
    async present(node, p, mode) {
      const entries = antiSpoofEntries(antiSpoofTable(node.ns, mode === "bridge" ? "bridge" : "inet"), p.veth);
      expect(entries).toContain(`ports: ${p.veth}`);
      expect(entries).toContain(`addr4: ${p.veth} . ${p.addr}`);
      // A source that is not the pod's own never reaches the client; its own does.
      const spoofed = p.addr.replace(/\.\d+$/, ".250");
      run(["ip", "-n", p.pod, "addr", "add", `${spoofed}/32`, "dev", "eth0"]);
      expect(await echoesDelivered({ from: p.pod, target: node.client, dst: UPLINK.client[4], real: p.addr, arrive: true })).toBeGreaterThanOrEqual(3);
      expect(await echoesDelivered({ from: p.pod, target: node.client, dst: UPLINK.client[4], source: spoofed, real: p.addr, arrive: false })).toBe(0);
    },
    tamper: (node, p, mode) => void nft(node.ns, ["delete", "element", mode === "bridge" ? "bridge" : "inet", "mncni-antispoof", "ports", `{ ${p.veth} }`]),
    gone(node, p, mode) {
      expect(antiSpoofEntries(antiSpoofTable(node.ns, mode === "bridge" ? "bridge" : "inet"), p.veth)).toEqual([]);
    },
  },

  policyHold: {
    on: () => ({ extra: { policyHold: true } }),
    async present(node, p) {
      expect(setElems(node.ns, "inet", "mncni-hold", "held_4")).toContain(JSON.stringify(p.addr));
      expect(await reaches(p.pod, UPLINK.client[4], { withinMs: 1500 })).toBe(false);
      // Released by hand (as the agent does once it programmed the pod): traffic flows; held again for DEL to release.
      nft(node.ns, ["delete", "element", "inet", "mncni-hold", "held_4", `{ ${p.addr} }`]);
      expect(await reaches(p.pod, UPLINK.client[4])).toBe(true);
      nft(node.ns, ["add", "element", "inet", "mncni-hold", "held_4", `{ ${p.addr} }`]);
    },
    gone(node, p) {
      expect(setElems(node.ns, "inet", "mncni-hold", "held_4")).not.toContain(JSON.stringify(p.addr));
    },
    gcLeaves: "GC knows no address of a pod gone without DEL: the agent releases holds of addresses no pod has",
  },

  ipMasq: {
    on: () => ({ extra: { ipMasq: true } }),
    async present(node, p) {
      const rules = nftJson(node.ns, ["list", "ruleset"]).filter((o) => o.rule?.table?.startsWith("mncni-masq-"));
      expect(JSON.stringify(rules)).toContain(p.addr.replace(/\.\d+$/, ".0"));
      expect(JSON.stringify(rules)).toContain("masquerade");
      expect(await sourceSeenByClient(node, p.pod)).toBe(UPLINK.node[4]);
    },
    gone(node, p) {
      // The network's table goes with its last attachment (each contract has a network of its own).
      expect(nftJson(node.ns, ["list", "tables"]).filter((o) => o.table?.name.startsWith("mncni-masq-"))).toEqual([]);
      void p;
    },
    gcLeaves: "GC removes stale veths, not a network's masquerade table (the next DEL of the network does)",
  },

  bandwidth: {
    on: () => ({ runtimeConfig: { bandwidth: { ingressRate: 8_000_000, ingressBurst: 512_000, egressRate: 16_000_000, egressBurst: 256_000 } } }),
    async present(node, p) {
      expect(qdiscs(node.ns, p.veth).find((q) => q.kind === "tbf")?.options).toMatchObject({ rate: 1_000_000, burst: 64_000 });
      expect(qdiscs(node.ns, p.veth).some((q) => q.kind === "ingress")).toBe(true);
      expect(link(node.ns, ifbOf(p.veth))?.linkinfo?.info_kind).toBe("ifb");
      expect(qdiscs(node.ns, ifbOf(p.veth)).find((q) => q.kind === "tbf")?.options).toMatchObject({ rate: 2_000_000, burst: 32_000 });
      expect(await reaches(p.pod, UPLINK.client[4])).toBe(true);
    },
    tamper: (node, p) => void run(["ip", "netns", "exec", node.ns, "tc", "qdisc", "del", "dev", p.veth, "root"]),
    gone(node, p) {
      expect(link(node.ns, ifbOf(p.veth))).toBeUndefined();
    },
  },

  fastPath: {
    on: () => ({ extra: { fastPath: true } }),
    async present(node, p) {
      // On tcx (this kernel has it), no qdisc: nothing between the packet and the program.
      expect(bpfIngress(node.ns, p.veth)).toEqual(["mncni_pod_redir tcx"]);
      expect(qdiscs(node.ns, p.veth).map((q) => q.kind)).not.toContain("clsact");
      const id = fastPathProg(node, p.network);
      // The program attached is the one recorded for the network (what the agent adopts).
      expect(ingressPrograms(node.ns, p.veth).find((x) => x.name === "mncni_pod_redir")?.id).toBe(id);
      // No agent put the pod in the plain-pods map: the program hands its packets to the stack.
      expect(await reaches(p.pod, UPLINK.client[4])).toBe(true);
      // As the agent would: the pod in the map, the program and map held open (as the agent holds them).
      const rec = fastPathRecord(node, p.network)!;
      const map = PlainPodsMap.adopt(fdById("map", rec.map));
      map.set({ ip: p.addr, podMac: "02:00:00:00:00:01", hostMac: "02:00:00:00:00:02", hostIndex: 1 });
      agentHolds.set(p.addr, { map, prog: fdById("prog", rec.prog) });
    },
    tamper: (node, p) => detachTcx(node.ns, p.veth, "mncni_pod_redir"),
    async gone(node, p) {
      expect(bpfIngress(node.ns, p.veth)).toEqual([]);
      // DEL took the pod's address out of the map, before IPAM could give it to another pod.
      const held = agentHolds.get(p.addr);
      if (held) {
        agentHolds.delete(p.addr);
        try {
          expect(held.map.get(p.addr)).toBeUndefined();
        } finally {
          held.map.close();
          closeBpfFd(held.prog);
        }
      }
      // The pod was the program's only holder: nothing of it is left in the kernel.
      const id = fastPathProg(node, p.network);
      if (id !== undefined) expect(await progLives(id)).toBe(false);
    },
  },

  hostPort: {
    on: (n) => ({ runtimeConfig: { portMappings: [{ hostPort: hostPortOf(n), containerPort: 80, protocol: "tcp" }] } }),
    async present(node, p, mode) {
      const port = hostPortOf(Number(p.id.split("-").pop()));
      expect(setElems(node.ns, "inet", "mncni-hostport", "port4", "map").join("\n")).toContain(`${port}`);
      expect(setElems(node.ns, "inet", "mncni-hostport", "port4", "map").join("\n")).toContain(p.addr);
      expect(await tcpExchange({ server: p.pod, client: node.client, addr: UPLINK.node[4], port: 80, connectPort: port })).toBe(true);
      // localhost reaches it (route_localnet on the pod-facing interface), under the guard.
      expect(sysctl(node.ns, `net.ipv4.conf.${mode === "bridge" ? BRIDGE : p.veth}.route_localnet`)).toBe("1");
      expect(nftJson(node.ns, ["list", "table", "inet", "mncni-localnet"]).some((o) => o.rule)).toBe(true);
      expect(await tcpExchange({ server: p.pod, client: node.ns, addr: "127.0.0.1", port: 80, connectPort: port })).toBe(true);
    },
    tamper: (node, p) => void nft(node.ns, ["delete", "element", "inet", "mncni-hostport", "port4", `{ tcp . ${hostPortOf(Number(p.id.split("-").pop()))} }`]),
    gone(node, p, mode) {
      expect(setElems(node.ns, "inet", "mncni-hostport", "port4", "map").join("\n")).not.toContain(p.addr);
      // The last hostPort pod behind the bridge is gone: route_localnet with it.
      if (mode === "bridge") expect(sysctl(node.ns, `net.ipv4.conf.${BRIDGE}.route_localnet`)).toBe("0");
    },
    noLaterFailure: "hostPort is the last feature that can fail (conntrack cleanup after it fails only when the kernel does)",
  },

  conntrackCleanup: {
    on: () => ({}),
    prime(node, p) {
      // A holder that got no DEL: its flow, and the IPAM's flow mark it left (src/ipam/README.md).
      insertFlow(node.ns, p.addr, 1111);
      mkdirSync(`${node.dataDir}/${p.network}/.mncni-flows`, { recursive: true });
      writeFileSync(`${node.dataDir}/${p.network}/.mncni-flows/${p.addr}`, "");
    },
    async present(node, p) {
      // The flow the address's previous holder left is forgotten at ADD; one of this pod's own is kept.
      expect(conntrackOf(node.ns, p.addr)).not.toContain("sport=1111");
      insertFlow(node.ns, p.addr, 2222);
      expect(conntrackOf(node.ns, p.addr)).toContain("sport=2222");
      expect(await reaches(node.ns, p.addr)).toBe(true); // and a neighbour entry for DEL to forget
    },
    gone(node, p) {
      expect(conntrackOf(node.ns, p.addr)).not.toContain("sport=2222");
      expect(run(["ip", "-n", node.ns, "neigh", "show", "to", p.addr]).stdout.trim()).toBe("");
    },
    gcLeaves: "GC knows no address of a pod gone without DEL (the next ADD given the address forgets its flows)",
    noLaterFailure: "conntrack cleanup runs before the pod is wired, and has no part to roll back",
  },
};

test("every feature of the list has a contract here", () => {
  expect(FEATURES.map((f) => f.name).sort()).toEqual(Object.keys(CONTRACTS).sort());
});

for (const mode of ["bridge", "routed"] as Mode[]) {
  describe(`per-pod features, ${mode} mode`, () => {
    let node: TestNode;
    let seq = 0;

    beforeAll(() => {
      node = new TestNode({ uplink: true });
      // What the agent makes when the cluster has policies (the plugin only adds and removes elements).
      run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], {
        stdin: `table inet mncni-hold {\n set held_4 { type ipv4_addr; }\n set held_6 { type ipv6_addr; }\n chain forward {\n  type filter hook forward priority -10; policy accept;\n  ip saddr @held_4 drop\n  ip daddr @held_4 drop\n }\n}\n` +
          // The node tracks connections, as any node running kube-proxy does.
          `table inet mnfc-ct {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n  ct state new counter\n }\n}\n`,
      });
    });

    FEATURES.forEach((feature, i) => {
      const c = CONTRACTS[feature.name];
      if (!c) return;
      const network = `mnf${i}`;
      const conf = (extra: Record<string, unknown> = {}, runtimeConfig?: Record<string, unknown>) => ({
        ...node.conf({ mode, name: network, ranges: [[{ subnet: `10.244.${10 + i}.0/24` }]], routes: [{ dst: "0.0.0.0/0" }], extra: { bridge: BRIDGE, antiSpoofing: false, ...extra } }),
        ...(runtimeConfig ? { runtimeConfig } : {}),
      });
      const podConf = (n: number) => {
        const on = c.on(n);
        return conf(on.extra, on.runtimeConfig);
      };
      const newPod = (): Pod => {
        const n = ++seq;
        const id = `fc-${feature.name}-${n}`;
        const veth = "mnc" + createHash("sha256").update(`${network}/${id}/eth0`).digest("hex").slice(0, 12);
        return { pod: node.pod(), id, network, addr: `10.244.${10 + i}.${10 + n}`, veth };
      };
      const add = (p: Pod, cfg = podConf(Number(p.id.split("-").pop()))) => node.call("ADD", cfg, { pod: p.pod, id: p.id, args: `IP=${p.addr}` });

      describe(feature.name, () => {
        test("ADD shows it in the kernel and in traffic; CHECK passes, and fails once it is broken; DEL removes it, twice", async () => {
          const p = newPod();
          c.prime?.(node, p);
          const r = add(p);
          expect({ code: r.code, out: r.code ? r.stdout : "" }).toEqual({ code: 0, out: "" });
          await c.present(node, p, mode);
          const cfg = podConf(Number(p.id.split("-").pop()));
          expect(node.check(cfg, r.json, p).code).toBe(0);
          if (c.tamper) {
            c.tamper(node, p, mode);
            const bad = node.check(cfg, r.json, p);
            expect(bad.code).not.toBe(0);
            expect(bad.json?.msg ?? "").toContain(p.veth);
          }
          expect(node.del(cfg, p).code).toBe(0);
          await c.gone(node, p, mode);
          expect(node.del(cfg, p).code).toBe(0);
          node.deletePod(p.pod);
        });

        test("DEL with an invalid runtimeConfig still removes it", async () => {
          for (const runtimeConfig of [{ portMappings: "not a list", bandwidth: { ingressRate: -1 }, mac: "not a MAC" }, "not an object"]) {
            const p = newPod();
            c.prime?.(node, p);
            expect(add(p).code).toBe(0);
            if (c.prime) await c.present(node, p, mode);
            const r = node.del({ ...podConf(0), runtimeConfig }, p);
            expect({ code: r.code, out: r.stdout }).toEqual({ code: 0, out: "" });
            await c.gone(node, p, mode);
            expect(link(node.ns, p.veth)).toBeUndefined();
            node.deletePod(p.pod);
          }
        });

        test(c.gcLeaves ? `GC of a pod gone without DEL (leaves it: ${c.gcLeaves})` : "GC removes what a pod gone without DEL left", async () => {
          const p = newPod();
          expect(add(p).code).toBe(0);
          node.deletePod(p.pod);
          for (let k = 0; k < 100 && link(node.ns, p.veth); k++) await Bun.sleep(50);
          expect(node.gc(podConf(0), []).code).toBe(0);
          if (!c.gcLeaves) await c.gone(node, p, mode);
          else node.del(podConf(0), p); // what the runtime would still do
        });

        test(c.noLaterFailure ? `an ADD failing later (none can: ${c.noLaterFailure})` : "an ADD that fails after it attached leaves nothing of it", async () => {
          if (c.noLaterFailure) return;
          // A host port another pod holds: hostPort, after this feature in the list, fails the ADD.
          // (In a network of its own: a network's masquerade table stays while it has pods.)
          const blockerConf = node.conf({ mode, name: "mnfblock", ranges: [[{ subnet: "10.244.9.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], extra: { bridge: BRIDGE } });
          const taken = hostPortOf(900 + i);
          const blocker = node.addPod({ ...blockerConf, runtimeConfig: { portMappings: [{ hostPort: taken, containerPort: 80 }] } }, `fc-block-${i}`);
          const p = newPod();
          const on = c.on(0);
          const r = add(p, conf(on.extra, { ...on.runtimeConfig, portMappings: [{ hostPort: taken, containerPort: 80 }] }));
          expect(r.json?.code).toBe(7);
          expect(r.json?.msg).toContain(`${taken}/tcp`);
          await c.gone(node, p, mode);
          expect(link(node.ns, p.veth)).toBeUndefined();
          expect(node.del(blockerConf, blocker).code).toBe(0);
        });
      });
    });
  });
}
