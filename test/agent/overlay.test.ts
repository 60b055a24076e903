// The overlay for real: nodes on two underlay segments (a switch namespace each, joined by the
// router), dual-stack, the compiled agent in each node with --routing auto or vxlan, in bridge
// and routed mode, pods added through the plugin it installed. Checked with `ip -j`, `bridge
// -j`, the conflist, /metrics and traffic: pod to pod across the segments without NAT, to the
// external host masqueraded, full-MTU DF packets through the tunnel, one byte more refused by
// the pod's interface, and above the tunnel's MTU the node's ICMP "frag needed" / "packet too big".
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { requireBinary } from "../helpers/binary.ts";
import { inNetns, ipJson, run } from "../helpers/netns.ts";
import { waitListening } from "../plugin/fixture.ts";
import { kernelRelease, txChecksumBroken, vtepMAC } from "../../src/agent/routing/index.ts";
import {
  BUN, EXT_IP, agentArgs, buildCluster, destroyCluster, podAttachment, removeNode, runtimeOf, startAgent, stopAgent, waitFor, writeNode, type TestCluster, type TestNode,
} from "./lab.ts";

const WHOAMI = join(import.meta.dir, "whoami.ts");
type R = { dst: string; gateway?: string; dev?: string; flags?: string[] };
const routesOf = (n: TestNode) =>
  [...ipJson<R[]>(n.ns, ["-4", "route", "show", "proto", "77"]), ...ipJson<R[]>(n.ns, ["-6", "route", "show", "proto", "77"])]
    .filter((r) => r.gateway)
    .map((r) => `${r.dst} via ${r.gateway}${r.dev?.startsWith("mncni.vxlan") ? ` dev ${r.dev}${r.flags?.includes("onlink") ? " onlink" : ""}` : ""}`)
    .sort();
const fdb = (n: TestNode, dev: string): string[] =>
  JSON.parse(inNetns(n.ns, ["bridge", "-j", "fdb", "show", "dev", dev], { allowFail: true }).stdout || "[]")
    .filter((e: { dst?: string }) => e.dst).map((e: { mac: string; dst: string }) => `${e.mac} ${e.dst}`).sort();
const neighs = (n: TestNode, dev: string) =>
  JSON.parse(inNetns(n.ns, ["ip", "-j", "neigh", "show", "dev", dev], { allowFail: true }).stdout || "[]")
    .map((e: { dst: string; lladdr: string; state: string[] }) => `${e.dst} ${e.lladdr} ${e.state.join(",")}`).sort();
const metrics = (n: TestNode) => inNetns(n.ns, ["curl", "-s", "http://127.0.0.1:9817/metrics"], { allowFail: true }).stdout;
const metric = (n: TestNode, name: string) => Number(metrics(n).match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
const readyz = (n: TestNode) => inNetns(n.ns, ["curl", "-s", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { allowFail: true }).stdout;
const ping = (ns: string, args: string[]) => inNetns(ns, ["ping", "-c", "1", "-W", "2", ...args], { allowFail: true });
/** Reachable within 5 s (a new IPv6 address may still be tentative, a neighbour unresolved). */
const reach = (ns: string, to: string) => inNetns(ns, ["ping", "-c", "1", "-w", "5", to], { allowFail: true }).code === 0;
/** Every kernel object of the overlay on a node, and the conflist: what a restart must leave as it is. */
const snapshot = (n: TestNode) => ({
  routes: routesOf(n),
  devices: ipJson<{ ifindex: number; ifname: string; mtu: number; address: string }[]>(n.ns, ["link", "show"])
    .filter((l) => l.ifname.startsWith("mncni.vxlan")).map((l) => `${l.ifindex} ${l.ifname} ${l.mtu} ${l.address}`),
  fdb: [...fdb(n, "mncni.vxlan"), ...fdb(n, "mncni.vxlan6")],
  neigh: [...neighs(n, "mncni.vxlan"), ...neighs(n, "mncni.vxlan6")],
  conflist: readFileSync(join(n.dir, "conf/10-mncni.conflist"), "utf8"),
});

for (const [routing, mode] of [["auto", "bridge"], ["vxlan", "routed"]] as const) {
  describe(`--routing ${routing}, ${mode} mode, two segments, dual-stack`, () => {
    let c: TestCluster;
    let n1: TestNode, n2: TestNode, n3: TestNode;
    const pod6 = new Map<string, string>();
    const servers: Subprocess[] = [];
    const extra = ["--routing", routing, "--mode", mode, "--cluster-cidr", "fd00:244::/48"];

    beforeAll(async () => {
      requireBinary();
      // n1 and n2 on segment 0 (10.99.0.0/24, fd99:1::/64), n3 on segment 1 (10.99.1.0/24, fd99:2::/64).
      c = buildCluster(3, { segments: 2, dualStack: true });
      [n1, n2, n3] = c.nodes as [TestNode, TestNode, TestNode];
      for (const n of c.nodes) startAgent(c, n, extra);
      await waitFor("every conflist", () => c.nodes.every((n) => { try { return !!readFileSync(join(n.dir, "conf/10-mncni.conflist")); } catch { return false; } }), 20_000);
      for (const n of c.nodes) {
        const r = (await runtimeOf(n).add(podAttachment(n))) as { ips: { address: string }[] };
        n.podIP = r.ips.find((i) => !i.address.includes(":"))!.address.split("/")[0]!;
        pod6.set(n.name, r.ips.find((i) => i.address.includes(":"))!.address.split("/")[0]!);
      }
      for (const ns of [n3.podNs, c.ext]) {
        servers.push(spawn(["ip", "netns", "exec", ns, BUN, WHOAMI, "serve", "7777"], { stdout: "ignore", stderr: "ignore" }));
        await waitListening(ns, 7777, 10_000);
      }
      await waitFor("every node ready", () => c.nodes.every((n) => readyz(n).endsWith("200")), 20_000);
    }, 90_000);

    afterAll(async () => {
      for (const p of servers) p.kill("SIGKILL");
      await destroyCluster(c);
    });

    test("per peer: a direct route on the same segment (auto), the tunnel otherwise; FDB and permanent neighbours derived from the node addresses", () => {
      const tunnel = (cidr: string, cidr6: string) => [
        `${cidr} via ${cidr.split("/")[0]} dev mncni.vxlan onlink`,
        `${cidr6} via ${cidr6.split("/")[0]} dev mncni.vxlan6 onlink`,
      ];
      const direct = (ip: string, ip6: string, cidr: string, cidr6: string) => [`${cidr} via ${ip}`, `${cidr6} via ${ip6}`];
      const n2Path = routing === "auto" ? direct(n2.ip, n2.ip6!, n2.podCIDR, n2.podCIDR6!) : tunnel(n2.podCIDR, n2.podCIDR6!);
      expect(routesOf(n1)).toEqual([...n2Path, ...tunnel(n3.podCIDR, n3.podCIDR6!)].sort());
      const peers = routing === "auto" ? [n3] : [n2, n3];
      expect(fdb(n1, "mncni.vxlan")).toEqual(peers.map((p) => `${vtepMAC(p.ip)} ${p.ip}`).sort());
      expect(fdb(n1, "mncni.vxlan6")).toEqual(peers.map((p) => `${vtepMAC(p.ip6!)} ${p.ip6}`).sort());
      expect(neighs(n1, "mncni.vxlan")).toEqual(peers.map((p) => `${p.podCIDR.split("/")[0]} ${vtepMAC(p.ip)} PERMANENT`).sort());
      expect(neighs(n1, "mncni.vxlan6")).toEqual(peers.map((p) => `${p.podCIDR6!.split("/")[0]} ${vtepMAC(p.ip6!)} PERMANENT`).sort());
      const dev = ipJson<{ ifname: string; mtu: number; address: string; linkinfo: { info_data: { id: number; port: number; local?: string; learning?: boolean } } }[]>(n1.ns, ["-d", "link", "show", "mncni.vxlan"])[0]!;
      expect(dev.mtu).toBe(1450);
      expect(dev.address).toBe(vtepMAC(n1.ip));
      expect(dev.linkinfo.info_data).toMatchObject({ id: 1, port: 4789, local: n1.ip, learning: false });
      expect(ipJson<{ mtu: number }[]>(n1.ns, ["link", "show", "mncni.vxlan6"])[0]!.mtu).toBe(1430);
      // Transmit checksum offload: off on kernels where it is broken (ethtool's view of what the
      // agent set over the ioctl), left on (with TSO) on the others.
      const k = inNetns(n1.ns, ["ethtool", "-k", "mncni.vxlan"]);
      expect(k.stdout).toContain(`tx-checksum-ip-generic: ${txChecksumBroken(kernelRelease()) ? "off" : "on"}`);
      // The agent says which path each peer takes.
      const m = metrics(n1);
      expect(m).toContain(`mncni_agent_peer_path{node="n3",path="tunnel"} 1`);
      expect(m).toContain(`mncni_agent_peer_path{node="n2",path="${routing === "auto" ? "direct" : "tunnel"}"} 1`);
    });

    test("the pod MTU: the underlay's 1500 minus 70 (an IPv6 underlay is in use), in the conflist and on the pod", () => {
      const conf = JSON.parse(readFileSync(join(n1.dir, "conf/10-mncni.conflist"), "utf8"));
      expect(conf.plugins[0].mtu).toBe(1430);
      expect(ipJson<{ mtu: number }[]>(n1.podNs, ["link", "show", "eth0"])[0]!.mtu).toBe(1430);
      expect(metric(n1, "mncni_agent_pod_mtu")).toBe(1430);
    });

    test("pod to pod across the segments keeps the pod address; to the outside it is masqueraded", () => {
      expect(reach(n1.podNs, n3.podIP)).toBe(true);
      expect(inNetns(n1.podNs, [BUN, WHOAMI, "ask", n3.podIP, "7777"]).stdout.trim()).toBe(n1.podIP);
      expect(inNetns(n1.podNs, [BUN, WHOAMI, "ask", EXT_IP, "7777"]).stdout.trim()).toBe(n1.ip);
      expect(reach(n1.podNs, pod6.get("n3")!)).toBe(true);
      expect(reach(n1.podNs, pod6.get("n2")!)).toBe(true);
      expect(reach(n1.podNs, n2.podIP)).toBe(true);
    });

    test("full-MTU DF packets cross the tunnel; one byte more is refused; above the tunnel the node answers frag needed / packet too big", () => {
      for (const [to, hdr] of [[n3.podIP, 28], [pod6.get("n3")!, 48]] as const) {
        const full = ping(n1.podNs, ["-M", "do", "-s", String(1430 - hdr), to]);
        expect(full.stdout).toContain("1 received");
        const more = ping(n1.podNs, ["-M", "do", "-s", String(1430 - hdr + 1), to]);
        expect(more.code).not.toBe(0);
        expect(more.stdout + more.stderr).toMatch(/message too long, mtu[=:] ?1430/);
      }
      // A sender whose interface is larger than the tunnel (a misconfigured pod, a host process):
      // the node must answer with the tunnel's MTU, or PMTU discovery would black-hole.
      const eth0 = ipJson<{ link_index: number }[]>(n1.podNs, ["link", "show", "eth0"])[0]!;
      const host = ipJson<{ ifindex: number; ifname: string }[]>(n1.ns, ["link", "show"]).find((l) => l.ifindex === eth0.link_index)!;
      run(["ip", "-n", n1.ns, "link", "set", host.ifname, "mtu", "1500"]);
      run(["ip", "-n", n1.podNs, "link", "set", "eth0", "mtu", "1500"]);
      try {
        const v4 = ping(n1.podNs, ["-M", "do", "-s", String(1450 - 28 + 1), n3.podIP]);
        expect(v4.stdout).toMatch(/Frag needed and DF set \(mtu = 1450\)/);
        const v6 = ping(n1.podNs, ["-M", "do", "-s", String(1430 - 48 + 1), pod6.get("n3")!]);
        expect(v6.stdout).toMatch(/Packet too big: mtu=1430/);
      } finally {
        run(["ip", "-n", n1.podNs, "link", "set", "eth0", "mtu", "1430"]);
        run(["ip", "-n", n1.ns, "link", "set", host.ifname, "mtu", "1430"]);
      }
    });

    test("nodes added and removed on either segment: their tunnel or route comes and goes", async () => {
      // No agent runs on n4 (segment 1) or n5 (segment 0): they are peers only.
      writeNode(c, "n4", "10.99.1.99", ["10.244.4.0/24", "fd00:244:0:4::/64"], "fd99:2::99");
      writeNode(c, "n5", "10.99.0.99", ["10.244.5.0/24", "fd00:244:0:5::/64"], "fd99:1::99");
      const n1Sees5 = routing === "auto" ? "10.244.5.0/24 via 10.99.0.99" : "10.244.5.0/24 via 10.244.5.0 dev mncni.vxlan onlink";
      await waitFor("n4 and n5 on n1 and n3", () =>
        routesOf(n1).includes("10.244.4.0/24 via 10.244.4.0 dev mncni.vxlan onlink") && routesOf(n1).includes(n1Sees5) &&
        routesOf(n3).includes(routing === "auto" ? "fd00:244:0:4::/64 via fd99:2::99" : "fd00:244:0:4::/64 via fd00:244:0:4:: dev mncni.vxlan6 onlink"));
      expect(fdb(n1, "mncni.vxlan")).toContain(`${vtepMAC("10.99.1.99")} 10.99.1.99`);
      expect(neighs(n1, "mncni.vxlan6")).toContain(`fd00:244:0:4:: ${vtepMAC("fd99:2::99")} PERMANENT`);
      removeNode(c, "n4");
      removeNode(c, "n5");
      await waitFor("n4 and n5 gone from n1 and n3", () => [n1, n3].every((n) => !routesOf(n).some((r) => /10\.244\.[45]\.|fd00:244:0:[45]:/.test(r))));
      for (const n of [n1, n3]) {
        expect(fdb(n, "mncni.vxlan").join()).not.toMatch(/10\.99\.[01]\.99/);
        expect(neighs(n, "mncni.vxlan").join()).not.toMatch(/10\.244\.[45]\.0/);
        expect(neighs(n, "mncni.vxlan6").join()).not.toMatch(/fd00:244:0:[45]::/);
      }
    }, 30_000);

    test("an agent restart changes nothing: the same kernel objects, the same device, no write", async () => {
      await waitFor("n1 settled", () => readyz(n1).endsWith("200"));
      const before = snapshot(n1);
      await stopAgent(n1);
      startAgent(c, n1, extra);
      await waitFor("n1 to answer again", () => readyz(n1).endsWith("200"), 40_000);
      // Once seen under load (8 writes: as many as n1's overlay objects): the agent's log, which
      // names each change a pass made, goes with a failure, to tell what was rewritten and why.
      const log = () => readFileSync(join(n1.dir, "agent.log"), "utf8").split("\n").filter((l) => l.trim()).slice(-40).join("\n");
      expect(metric(n1, "mncni_agent_kernel_writes_total"), `n1's agent log:\n${log()}`).toBe(0);
      expect(snapshot(n1), `n1's agent log:\n${log()}`).toEqual(before);
    }, 60_000);

    test("--uninstall removes the VXLAN devices (their FDB entries and neighbours with them) and the routes", async () => {
      await stopAgent(n1);
      run(agentArgs(c, n1, [...extra, "--uninstall", "--force"]));
      expect(ipJson<{ ifname: string }[]>(n1.ns, ["link", "show"]).map((l) => l.ifname).filter((n) => n.startsWith("mncni."))).toEqual([]);
      expect(routesOf(n1)).toEqual([]);
    });
  });
}
