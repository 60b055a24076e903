// The kube-proxy coexistence suite, for one mode x routing combination: a two-node lab with
// mncni's agents (masquerade, anti-spoofing and, once an allow-all NetworkPolicy is applied,
// policy tables in every node), kube-proxy's rules for a few Services loaded into every node
// namespace (its iptables layout with iptables-restore, then its nftables layout with nft),
// and real TCP and UDP traffic: pod -> ClusterIP (same node, other node, several backends),
// hairpin (a pod to its own Service), node -> ClusterIP, external host -> NodePort. Each
// answer names the backend that gave it and the source address it saw. Then mncni's agent is
// made to repair its own tables and kube-proxy's rules must be exactly as loaded.
// test/lab/kube-proxy-coexist.e2e.test.ts runs one combination in `make test`;
// kube-proxy-coexist.matrix.test.ts runs the others.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { resolve } from "node:path";
import { existsSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import type { LabStatus } from "../../src/lab/status.ts";
import { AGENT_HEALTH_PORT } from "../../src/base/ports.ts";
import { inNetns, ipJson, run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { iptablesLayout, nftablesLayout, KUBE_PROXY_NFT_TABLE, type KpService } from "../helpers/kube-proxy-rules.ts";
import type { EchoAnswer } from "../helpers/svc-echo.ts";
import { lab, labJson, leftovers, newLabName, NEEDS_AGENT } from "./lab-cli.ts";

const ECHO = resolve(import.meta.dir, "../helpers/svc-echo.ts");
const TCP_PORT = 8080;
const UDP_PORT = 5353;

export type Layout = "iptables" | "nftables";

/** What kube-proxy would have in the node: its rules, read back so a change shows. */
function kubeProxyRules(netns: string, layout: Layout): string {
  if (layout === "nftables") return inNetns(netns, ["nft", "list", "table", KUBE_PROXY_NFT_TABLE.family, KUBE_PROXY_NFT_TABLE.name]).stdout;
  // Counters move with traffic; the rules must not.
  return inNetns(netns, ["iptables-save"]).stdout.split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/g, "")).join("\n");
}

function loadLayout(netns: string, layout: Layout, services: KpService[], clusterCIDR: string): void {
  if (layout === "iptables") {
    inNetns(netns, ["iptables-restore"], { stdin: iptablesLayout(services, { clusterCIDR }) });
  } else {
    // kube-proxy in nftables mode cleans up its iptables rules on start (and vice versa).
    for (const t of ["nat", "filter"]) inNetns(netns, ["nft", "delete", "table", "ip", t], { allowFail: true });
    inNetns(netns, ["nft", "-f", "-"], { stdin: nftablesLayout(services, { clusterCIDR }) });
  }
}

function probe(netns: string, proto: "tcp" | "udp", target: string, n = 1): EchoAnswer[] {
  return JSON.parse(inNetns(netns, [process.execPath, ECHO, "probe", proto, target, String(n)]).stdout) as EchoAnswer[];
}

const nodeOwns = (netns: string, ip: string) => ipJson<{ addr_info: { local: string }[] }[]>(netns, ["-4", "addr", "show"]).some((l) => l.addr_info.some((a) => a.local === ip));

export function kubeProxySuite(mode: "bridge" | "routed", routing: "host-gw" | "vxlan", layouts: Layout[]): void {
  describe(`kube-proxy's rules beside mncni: ${mode} mode, ${routing}`, () => {
    const name = newLabName();
    let st: LabStatus;
    const servers: Subprocess[] = [];
    let tmp = "";
    let services: KpService[] = [];
    const pod = (node: string, p: string) => st.pods.find((x) => x.node === node && x.name === p)!;
    const ip4 = (node: string, p: string) => pod(node, p).ips.find((a) => !a.includes(":"))!;
    const nodeNs = (n: string) => st.nodes.find((x) => x.name === n)!.namespace;
    const nodeAddr = (n: string) => st.nodes.find((x) => x.name === n)!.address;

    /** Each node's agent as this suite runs it: the lab's flags without --service-proxy. */
    const agents = new Map<string, { argv: string[]; proc?: Subprocess }>();
    const stopPid = async (pid: number) => {
      process.kill(pid, "SIGTERM");
      await until(`agent pid ${pid} to stop`, () => !existsSync(`/proc/${pid}`), 10_000);
    };
    const agentReady = (node: string) => inNetns(nodeNs(node), ["curl", "-sf", "-o", "/dev/null", `http://127.0.0.1:${AGENT_HEALTH_PORT}/readyz`], { allowFail: true }).code === 0;
    const startAgent = async (node: string) => {
      const a = agents.get(node)!;
      a.proc = spawn(["ip", "netns", "exec", nodeNs(node), ...a.argv], { stdout: "ignore", stderr: "ignore" });
      await until(`${node}'s agent to be ready`, () => agentReady(node), 20_000);
    };
    const stopAgent = async (node: string) => {
      const a = agents.get(node)!;
      if (a.proc && a.proc.exitCode === null) await stopPid(a.proc.pid);
      a.proc = undefined;
    };

    beforeAll(async () => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--mode", mode, "--routing", routing, "--wiring", "agent"]);
      st = labJson<LabStatus>(name, ["status"]);
      // Where kube-proxy runs, mncni's agent runs without its own Service proxy (the DaemonSet's
      // default); the lab's agents proxy the lab's Services, so each is started again here with
      // the lab's flags minus --service-proxy (it then removes the Service table it had written).
      for (const n of st.nodes) {
        const argv = (await Bun.file(`/proc/${n.agentPid}/cmdline`).text()).split("\0").filter((a) => a && a !== "--service-proxy");
        agents.set(n.name, { argv });
        await stopPid(n.agentPid!);
        await startAgent(n.name);
      }
      for (const p of st.pods) {
        const s = spawn(["ip", "netns", "exec", p.namespace, process.execPath, ECHO, "serve", `${p.node}/${p.name}`, String(TCP_PORT), String(UDP_PORT)], { stdout: "pipe", stderr: "inherit" });
        servers.push(s);
        const reader = s.stdout.getReader();
        const { value } = await reader.read();
        expect(new TextDecoder().decode(value)).toContain("ready");
        reader.releaseLock();
      }
      const ports = (np?: [number, number]) => [
        { name: "http", protocol: "TCP" as const, port: 80, targetPort: TCP_PORT, ...(np ? { nodePort: np[0] } : {}) },
        { name: "dns", protocol: "UDP" as const, port: 53, targetPort: UDP_PORT, ...(np ? { nodePort: np[1] } : {}) },
      ];
      services = [
        { namespace: "apps", name: "same", clusterIP: "10.96.0.11", ports: ports([30011, 30011]), endpoints: [ip4("node1", "pod2")] },
        { namespace: "apps", name: "cross", clusterIP: "10.96.0.12", ports: ports([30012, 30012]), endpoints: [ip4("node2", "pod1")] },
        { namespace: "apps", name: "hairpin", clusterIP: "10.96.0.13", ports: ports(), endpoints: [ip4("node1", "pod1")] },
        { namespace: "apps", name: "spread", clusterIP: "10.96.0.14", ports: ports(), endpoints: [ip4("node1", "pod2"), ip4("node2", "pod2")] },
      ];
      tmp = mkdtempSync(`${tmpdir()}/kpcoexist-`);
    });

    afterAll(async () => {
      for (const s of servers) s.kill();
      for (const n of agents.keys()) await stopAgent(n);
      lab(name, ["down", "-q"], { allowFail: true });
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      expect(leftovers(name)).toEqual([]);
    });

    if (mode === "bridge") {
      test(`bridge mode: the agent turns bridge-nf-call-iptables on, which Service replies between pods of one bridge need${NEEDS_AGENT}`, async () => {
        // No NetworkPolicy yet: only the Service need can make the agent turn it on.
        for (const n of ["node1", "node2"]) {
          for (const f of ["iptables", "ip6tables"]) inNetns(nodeNs(n), ["sysctl", "-qw", `net.bridge.bridge-nf-call-${f}=0`]);
        }
        loadLayout(nodeNs("node1"), "iptables", services, st.clusterCidr);
        await until("the agent to set bridge-nf-call-iptables=1", () => inNetns(nodeNs("node1"), ["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"]).stdout.trim() === "1", 15_000);
        expect(inNetns(nodeNs("node1"), ["sysctl", "-n", "net.bridge.bridge-nf-call-ip6tables"]).stdout.trim()).toBe("1");
        const [a] = probe(pod("node1", "pod1").namespace, "tcp", "10.96.0.11:80");
        expect(a).toEqual({ ok: true, id: "node1/pod2", seen: ip4("node1", "pod1") });
      });
    }

    test(`with an allow-all NetworkPolicy, the agent's tables are all there, and no Service table of its own${NEEDS_AGENT}`, async () => {
      const f = `${tmp}/allow-all.yaml`;
      writeFileSync(f, ["apiVersion: networking.k8s.io/v1", "kind: NetworkPolicy", "metadata: {name: allow-all, namespace: default}", "spec:", "  podSelector: {}", "  policyTypes: [Ingress]", "  ingress: [{}]", ""].join("\n"));
      lab(name, ["apply", "-f", f]);
      for (const n of ["node1", "node2"]) {
        await until(`${n}'s policy, masquerade and anti-spoofing tables`, () => {
          const tables = run(["ip", "netns", "exec", nodeNs(n), "nft", "list", "tables"]).stdout.split("\n");
          return ["table inet mncni-policy", "table inet mncni", `table ${mode === "bridge" ? "bridge" : "inet"} mncni-antispoof`].every((t) => tables.includes(t));
        }, 20_000);
        // Without --service-proxy, no Service table of mncni's: one proxy, kube-proxy.
        expect(inNetns(nodeNs(n), ["nft", "list", "tables"]).stdout).not.toContain("mncni-services");
      }
    });

    for (const layout of layouts) {
      describe(`kube-proxy ${layout} mode`, () => {
        let loaded: Record<string, string> = {};
        beforeAll(() => {
          for (const n of ["node1", "node2"]) loadLayout(nodeNs(n), layout, services, st.clusterCidr);
          loaded = Object.fromEntries(["node1", "node2"].map((n) => [n, kubeProxyRules(nodeNs(n), layout)]));
        });

        for (const proto of ["tcp", "udp"] as const) {
          const port = proto === "tcp" ? 80 : 53;
          test(`${proto}: pod -> ClusterIP, backend on the same node and on the other node, source kept${NEEDS_AGENT}`, () => {
            const client = pod("node1", "pod1").namespace;
            expect(probe(client, proto, `10.96.0.11:${port}`)).toEqual([{ ok: true, id: "node1/pod2", seen: ip4("node1", "pod1") }]);
            expect(probe(client, proto, `10.96.0.12:${port}`)).toEqual([{ ok: true, id: "node2/pod1", seen: ip4("node1", "pod1") }]);
          });

          test(`${proto}: hairpin, a pod to its own Service, is masqueraded to a node address${NEEDS_AGENT}`, () => {
            const [a] = probe(pod("node1", "pod1").namespace, proto, `10.96.0.13:${port}`);
            expect(a).toMatchObject({ ok: true, id: "node1/pod1" });
            expect(a!.seen).not.toBe(ip4("node1", "pod1"));
            expect(nodeOwns(nodeNs("node1"), a!.seen!)).toBe(true);
          });

          test(`${proto}: several backends on both nodes are all chosen (kube-proxy's random split)${NEEDS_AGENT}`, () => {
            const answers = probe(pod("node1", "pod1").namespace, proto, `10.96.0.14:${port}`, 16);
            expect(answers.filter((a) => !a.ok)).toEqual([]);
            expect([...new Set(answers.map((a) => a.id))].sort()).toEqual(["node1/pod2", "node2/pod2"]);
          });

          test(`${proto}: the node itself -> ClusterIP of a pod on the other node${NEEDS_AGENT}`, () => {
            expect(probe(nodeNs("node1"), proto, `10.96.0.12:${port}`)).toMatchObject([{ ok: true, id: "node2/pod1" }]);
          });

          test(`${proto}: external host -> NodePort, backend on that node and on the other, masqueraded to the node${NEEDS_AGENT}`, () => {
            for (const [node, svcPort, backend] of [["node1", 30011, "node1/pod2"], ["node1", 30012, "node2/pod1"], ["node2", 30011, "node1/pod2"]] as const) {
              const [a] = probe(st.external.namespace, proto, `${nodeAddr(node)}:${svcPort}`);
              expect(a).toMatchObject({ ok: true, id: backend });
              expect(nodeOwns(nodeNs(node), a!.seen!)).toBe(true);
            }
          });
        }

        test(`the agent repairs its own tables and leaves kube-proxy's rules exactly as loaded${NEEDS_AGENT}`, async () => {
          const n1 = nodeNs("node1");
          // Delete the agent's masquerade table: its next pass writes it again (a whole-table write beside kube-proxy's).
          inNetns(n1, ["nft", "delete", "table", "inet", "mncni"]);
          await until("the agent to write inet mncni again", () => inNetns(n1, ["nft", "list", "tables"]).stdout.includes("table inet mncni\n"), 15_000);
          for (const n of ["node1", "node2"]) expect(kubeProxyRules(nodeNs(n), layout)).toBe(loaded[n]!);
          expect(probe(pod("node1", "pod1").namespace, "tcp", "10.96.0.12:80")).toEqual([{ ok: true, id: "node2/pod1", seen: ip4("node1", "pod1") }]);
        });
      });
    }

    test(`an agent restarted (adopting its tables) and then mncni agent --uninstall leave kube-proxy's iptables and nftables rules as they were${NEEDS_AGENT}`, async () => {
      // Both layouts at once (a node switching modes keeps the other's leftovers until kube-proxy cleans up).
      const n2 = nodeNs("node2");
      loadLayout(n2, "nftables", services, st.clusterCidr);
      inNetns(n2, ["iptables-restore"], { stdin: iptablesLayout(services, { clusterCIDR: st.clusterCidr }) });
      const before = { ipt: kubeProxyRules(n2, "iptables"), nft: kubeProxyRules(n2, "nftables") };
      // The agent stopped and started again: it adopts (or repairs) its tables beside kube-proxy's.
      await stopAgent("node2");
      await startAgent("node2");
      expect(kubeProxyRules(n2, "iptables")).toBe(before.ipt);
      expect(kubeProxyRules(n2, "nftables")).toBe(before.nft);
      await stopAgent("node2");
      const argv = agents.get("node2")!.argv;
      // Then uninstall (the agent stopped: it would write everything again) with the agent's own flags.
      const at = argv.indexOf("agent") + 1;
      // --force: the node's pods are still attached to its bridge (without it the bridge is kept and the exit code says so).
      const u = inNetns(n2, [...argv.slice(0, at), "--uninstall", "--force", ...argv.slice(at)], { allowFail: true });
      const logFile = argv[argv.indexOf("--log-file") + 1];
      if (u.code !== 0) throw new Error(`mncni agent --uninstall failed (${u.code}): ${u.stderr}${u.stdout}${logFile && existsSync(logFile) ? await Bun.file(logFile).text() : ""}`);
      const tables = inNetns(n2, ["nft", "list", "tables"]).stdout;
      expect(tables).not.toMatch(/mncni/);
      expect(kubeProxyRules(n2, "iptables")).toBe(before.ipt);
      expect(kubeProxyRules(n2, "nftables")).toBe(before.nft);
    });
  });
}
