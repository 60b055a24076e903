// Policy enforcement for real, in both modes and through both sources: node namespaces with
// the compiled agent, pods added through the plugin it installed (served ADDs),
// Pod/NetworkPolicy/ClusterNetworkPolicy objects in the agents' manifests directory or served
// by the (fake) Kubernetes API under deploy/'s RBAC (policy-source.ts), and real TCP/UDP
// probes between pods (same node, bridged in bridge mode; and across nodes) and from the node
// itself (kubelet probes). The kernel's table is waited for through its marker hash and every
// set's elements (what a fresh compile of the source's objects says), then traffic decides.

// The suite per mode and source, run by policy.integration.test.ts (`make test`: each mode
// once, each source once) and policy.matrix.test.ts (`make test-matrix`: the other two).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { buildClusterState, PolicyEvaluator, type Protocol } from "../../src/cluster/index.ts";
import { createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";
import { requireBinary } from "../helpers/binary.ts";
import { CniPluginError } from "../../src/lab/executor.ts";
import { UNKNOWN_POD_WAIT_MS } from "../../src/agent/agent.ts";
import { policyTable, programmed as programmedOn } from "./policy-kernel.ts";
import { agentArgs, buildCluster, destroyCluster, runtimeOf, stopAgent, waitFor, type TestCluster, type TestNode } from "./lab.ts";
import { policySource, type PolicySource, type SourceName } from "./policy-source.ts";

const PROBE = join(import.meta.dir, "policy-probe.py");
const PY = "/usr/bin/python3";

interface Pod {
  ns: string;
  name: string;
  node: TestNode;
  netns: string;
  ip: string;
  ip6: string;
  labels: Record<string, string>;
  server?: Subprocess;
}

export function policySuite(mode: "bridge" | "routed", sourceName: SourceName): void {
  describe(`policy enforcement (${mode} mode, ${sourceName} source)`, () => {
    let c: TestCluster;
    let n1: TestNode;
    let n2: TestNode;
    let source: PolicySource;
    const pods: Record<string, Pod> = {};
    const t = (name: string, fn: () => Promise<void>) => test(name, fn, 60_000);

    const write = (file: string, docs: object[]) => source.write(file, docs);
    const stateNow = () => buildClusterState(source.objects());
    const startAgent = (n: TestNode) => {
      n.agent = spawn(agentArgs(c, n, ["--mode", mode, "--cluster-cidr", "fd00:244::/48"], { source: source.arg }), { stdout: "ignore", stderr: "pipe" });
    };
    const marker = (n: TestNode) => policyTable(n.ns).hash;
    /** Waits until each agent has programmed the state now in the source. */
    const programmed = async () => {
      const s = stateNow();
      for (const n of [n1, n2]) await programmedOn(n, s, 15_000);
    };
    const policies = async (docs: object[]) => {
      if (docs.length) write("policies.yaml", docs);
      else source.remove("policies.yaml");
      await programmed();
    };
    const probe = (from: string, to: string, port: number, proto = "tcp") =>
      inNetns(pods[from]?.netns ?? from, [PY, PROBE, "probe", pods[to]!.ip, String(port), proto], { allowFail: true }).stdout.trim();
    /** A probe's destination address and transport: proto is tcp (default), udp, tcp6 or udp6. */
    const target = (to: string, proto = "tcp") => {
      const six = proto.endsWith("6");
      return { six, address: six ? pods[to]!.ip6 : pods[to]!.ip, transport: proto.replace(/6$/, "") };
    };
    /** Probes in parallel: "from->to:port/proto" -> ok|no. */
    const matrix = async (probes: string[]) => {
      const out: Record<string, string> = {};
      await Promise.all(probes.map(async (p) => {
        const [, from, to, port, proto] = p.match(/^(\S+)->(\S+):(\d+)(?:\/(\w+))?$/)!;
        const netns = pods[from!]?.netns ?? from!;
        const { address, transport } = target(to!, proto);
        const proc = spawn(["ip", "netns", "exec", netns, PY, PROBE, "probe", address, port!, transport], { stdout: "pipe", stderr: "ignore" });
        out[p] = (await new Response(proc.stdout).text()).trim();
      }));
      return out;
    };
    /**
     * What the evaluator (src/cluster/evaluate-policy.ts, written from the API specs) says of
     * the same probes, for pod-to-pod flows between pods the source knows (a probe from a node,
     * or from or to a pod not yet in the source, is judged by traffic alone).
     */
    const verdicts = (probes: string[]) => {
      const state = stateNow();
      const ev = new PolicyEvaluator(state);
      const known = (p: Pod | undefined): p is Pod => !!p && state.pods.has(`${p.ns}/${p.name}`);
      const out: Record<string, string> = {};
      for (const p of probes) {
        const [, from, to, port, proto] = p.match(/^(\S+)->(\S+):(\d+)(?:\/(\w+))?$/)!;
        const [src, dst] = [pods[from!], pods[to!]];
        if (!known(src) || !known(dst)) continue;
        const six = target(to!, proto).six;
        const v = ev.evaluate({ src: { pod: `${src.ns}/${src.name}`, ip: six ? src.ip6 : src.ip }, dst: { pod: `${dst.ns}/${dst.name}`, ip: six ? dst.ip6 : dst.ip }, port: Number(port), protocol: target(to!, proto).transport.toUpperCase() as Protocol });
        out[p] = v.allowed ? "ok" : "no";
      }
      return out;
    };
    /** Traffic AND the evaluator's verdict give the expected answer for every probe. */
    const expectMatrix = async (want: Record<string, "ok" | "no">) => {
      const judged = verdicts(Object.keys(want));
      expect(judged).toEqual(Object.fromEntries(Object.entries(want).filter(([p]) => p in judged)));
      expect(await matrix(Object.keys(want))).toEqual(want);
    };

    type Port = { name: string; containerPort: number; protocol?: string };
    const writePod = (pod: Pod, ports: Port[]) => write(`pod-${pod.ns}-${pod.name}.yaml`, [{
      apiVersion: "v1", kind: "Pod", metadata: { name: pod.name, namespace: pod.ns, labels: pod.labels },
      spec: { nodeName: pod.node.name, containers: [{ name: "c", ports }] }, status: { podIP: pod.ip, podIPs: [{ ip: pod.ip }, { ip: pod.ip6 }] },
    }]);

    /** The Pod as the API has it before its ADD: labels, no addresses yet. */
    const writePendingPod = (node: TestNode, ns: string, name: string, labels: Record<string, string>) => write(`pod-${ns}-${name}.yaml`, [{
      apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns, labels },
      spec: { nodeName: node.name, containers: [{ name: "c" }] }, status: { phase: "Pending" },
    }]);

    async function addPod(node: TestNode, ns: string, name: string, labels: Record<string, string>, ports: Port[] = [], o = { manifest: true }) {
      const netns = createNetns("mnp-pod");
      const res = (await runtimeOf(node).add({
        containerId: `${ns}-${name}`, netns: netnsPath(netns), ifname: "eth0",
        args: { K8S_POD_NAMESPACE: ns, K8S_POD_NAME: name },
      })) as { ips: { address: string }[] };
      const addr = (six: boolean) => res.ips.map((i) => i.address.split("/")[0]!).find((a) => a.includes(":") === six)!;
      const pod: Pod = { ns, name, node, netns, ip: addr(false), ip6: addr(true), labels };
      pods[name] = pod;
      if (o.manifest) writePod(pod, ports);
      const server = spawn(["ip", "netns", "exec", netns, PY, PROBE, "serve", "80", "81"], { stdout: "pipe", stderr: "ignore" });
      pod.server = server;
      const reader = server.stdout.getReader();
      await reader.read(); // "listening"
      reader.releaseLock();
    }

    beforeAll(async () => {
      // Dual-stack: every probe names its family (tcp/udp over IPv4, tcp6/udp6 over IPv6).
      c = buildCluster(2, { dualStack: true });
      [n1, n2] = c.nodes as [TestNode, TestNode];
      source = policySource(sourceName, c);
      for (const n of [n1, n2]) startAgent(n);
      await waitFor("both agents to write their conflist", () => [n1, n2].every((n) => existsSync(join(n.dir, "conf/10-mncni.conflist"))), 20_000);
      write("ns.yaml", [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "x", labels: { "kubernetes.io/metadata.name": "x", team: "x" } } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "y", labels: { "kubernetes.io/metadata.name": "y", team: "y" } } },
      ]);
      await addPod(n1, "x", "a", { app: "a" }, [{ name: "http", containerPort: 81 }, { name: "dns", containerPort: 80, protocol: "UDP" }]);
      await addPod(n1, "x", "b", { app: "b" });
      await addPod(n2, "y", "c", { app: "c" });
      await programmed();
    }, 90_000);

    afterAll(async () => {
      for (const p of Object.values(pods)) p.server?.kill("SIGKILL");
      await destroyCluster(c);
      source?.close();
    });

    t("no policy: every pod reaches every pod; no policy table", async () => {
      await policies([]);
      expect(marker(n1)).toBe("absent");
      await expectMatrix({ "b->a:80": "ok", "c->a:80": "ok", "a->c:81/udp": "ok" });
    });

    t("default deny ingress isolates x's pods for ingress only; the node still reaches them; replies pass", async () => {
      await policies([{ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      await expectMatrix({ "b->a:80": "no", "c->a:80": "no", "c->a:81/udp": "no", "a->c:80": "ok", "a->c:80/udp": "ok", "b->c:81": "ok" });
      // The node itself (kubelet probes) always reaches its pods.
      expect(probe(n1.ns, "a", 80)).toBe("ok");
    });

    t("podSelector peer and port: only b, only TCP 80", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "from-b", namespace: "x" }, spec: {
        podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }],
      } }]);
      await expectMatrix({ "b->a:80": "ok", "b->a:81": "no", "b->a:80/udp": "no", "c->a:80": "no", "a->b:80": "ok" });
    });

    t("named port resolved on the pod; namespaceSelector peer across nodes", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "http-from-y", namespace: "x" }, spec: {
        podSelector: { matchLabels: { app: "a" } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "y" } } }], ports: [{ port: "http" }, { port: "dns", protocol: "UDP" }] }],
      } }]);
      await expectMatrix({ "c->a:81": "ok", "c->a:80": "no", "c->a:80/udp": "ok", "c->a:81/udp": "no", "b->a:81": "no" });
    });

    t("endPort and ipBlock with except", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "block", namespace: "x" }, spec: {
        podSelector: { matchLabels: { app: "a" } },
        ingress: [{ from: [{ ipBlock: { cidr: "10.244.0.0/16", except: ["10.244.2.0/24"] } }], ports: [{ port: 79, endPort: 81 }] }],
      } }]);
      await expectMatrix({ "b->a:80": "ok", "b->a:81": "ok", "b->a:80/udp": "no", "c->a:80": "no" });
    });

    t("default deny egress: b reaches nobody, the others are untouched", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "no-egress", namespace: "x" }, spec: {
        podSelector: { matchLabels: { app: "b" } }, policyTypes: ["Egress"],
      } }]);
      await expectMatrix({ "b->a:80": "no", "b->c:80": "no", "b->c:80/udp": "no", "a->b:80": "ok", "c->b:80": "ok" });
    });

    t("ClusterNetworkPolicy: Admin Deny wins over a NetworkPolicy allow; Pass hands over to the NetworkPolicy", async () => {
      const allowAll = { kind: "NetworkPolicy", metadata: { name: "allow-all", namespace: "x" }, spec: { podSelector: {}, ingress: [{}] } };
      await policies([allowAll, { apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name: "deny-y" }, spec: {
        tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } },
        ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }],
      } }]);
      await expectMatrix({ "c->a:80": "no", "c->b:81/udp": "no", "b->a:80": "ok" });
      // A higher-precedence Pass for port 80 skips the Deny: the NetworkPolicy then allows it.
      await policies([allowAll,
        { kind: "ClusterNetworkPolicy", metadata: { name: "pass-80" }, spec: {
          tier: "Admin", priority: 5, subject: { namespaces: {} },
          ingress: [{ action: "Pass", from: [{ pods: { podSelector: { matchLabels: { app: "c" } } } }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }],
        } },
        { kind: "ClusterNetworkPolicy", metadata: { name: "deny-y" }, spec: {
          tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } },
          ingress: [{ action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }],
        } }]);
      await expectMatrix({ "c->a:80": "ok", "c->a:81": "no", "b->a:81": "ok" });
    });

    t("verdict log: a denied flow is a JSON line naming the pods and the deciding policy; /metrics counts it; mncni flows shows it", async () => {
      await policies([{ kind: "ClusterNetworkPolicy", metadata: { name: "deny-y" }, spec: {
        tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } },
        ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }],
      } }]);
      const file = join(n1.dir, "flows.log");
      // Earlier tests denied c->a too: only lines from now on count, and the flow is one the
      // test before did not probe (a line of its may still be on its way).
      const skip = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0;
      await expectMatrix({ "c->a:81/udp": "no" });
      const denied = () => (existsSync(file) ? readFileSync(file, "utf8") : "").split("\n").filter(Boolean).slice(skip).map((l) => JSON.parse(l))
        .filter((r: any) => r.dst.pod === "a" && r.dst.port === 81 && r.protocol === "UDP");
      await waitFor("the verdict log line", () => denied().length > 0, 10_000);
      expect(denied()[0]).toMatchObject({
        verdict: "deny",
        src: { ip: pods.c!.ip, namespace: "y", pod: "c" },
        dst: { ip: pods.a!.ip, namespace: "x", pod: "a", port: 81 },
        policy: { kind: "ClusterNetworkPolicy", name: "deny-y", rule: "no-y", tier: "Admin", direction: "ingress" },
      });
      const metrics = inNetns(n1.ns, ["curl", "-s", "http://127.0.0.1:9817/metrics"]).stdout;
      expect(metrics).toMatch(/mncni_agent_policy_verdicts_total\{kind="ClusterNetworkPolicy",namespace="",name="deny-y",verdict="deny"\} [1-9]/);
      const shown = run([requireBinary(), "flows", "--file", file]).stdout;
      expect(shown).toMatch(/DENY\s+UDP\s+y\/c:\d+\s+x\/a:81\s+\d+  ClusterNetworkPolicy Admin deny-y no-y \(ingress\)/);
    });

    t("Baseline deny is overridden by a NetworkPolicy for the pods it selects", async () => {
      const baseline = { kind: "ClusterNetworkPolicy", metadata: { name: "baseline" }, spec: {
        tier: "Baseline", priority: 1, subject: { namespaces: {} },
        ingress: [{ action: "Deny", from: [{ namespaces: {} }] }],
      } };
      await policies([baseline]);
      await expectMatrix({ "b->a:80": "no", "c->b:80": "no", "a->c:80": "no" });
      await policies([baseline, { kind: "NetworkPolicy", metadata: { name: "a-from-c", namespace: "x" }, spec: {
        podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ namespaceSelector: {} , podSelector: { matchLabels: { app: "c" } } }] }],
      } }]);
      await expectMatrix({ "c->a:80": "ok", "b->a:80": "no", "c->b:80": "no" });
    });

    // ---- What no test had sent real traffic through before (#24, "the test suite").
    const cnp = (name: string, spec: object) => ({ apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec });
    const np = (name: string, spec: object) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: "x" }, spec });
    const podsWith = (labels: Record<string, string>) => ({ pods: { namespaceSelector: {}, podSelector: { matchLabels: labels } } });
    const tcp = (number: number) => ({ tcp: { destinationPort: { number } } });

    t("IPv6: ingress isolation, a pod peer with a port, and an IPv6 ipBlock hold over the pods' IPv6 addresses", async () => {
      await policies([np("from-b", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }] })]);
      await expectMatrix({ "b->a:80/tcp6": "ok", "b->a:81/tcp6": "no", "b->a:80/udp6": "no", "c->a:80/tcp6": "no", "a->c:80/tcp6": "ok", "a->b:81/udp6": "ok" });
      // n2's IPv6 pod subnet: c (on n2) over IPv6 only; the same pods over IPv4 match no block.
      await policies([np("from-n2-v6", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ ipBlock: { cidr: "fd00:244:0:2::/64" } }] }] })]);
      await expectMatrix({ "c->a:80/tcp6": "ok", "c->a:81/udp6": "ok", "c->a:80": "no", "b->a:80/tcp6": "no" });
    });

    t("IPv6: egress isolation over IPv6, on the node and across nodes; replies and neighbour discovery still work", async () => {
      await policies([np("no-egress", { podSelector: { matchLabels: { app: "b" } }, policyTypes: ["Egress"] })]);
      await expectMatrix({ "b->a:80/tcp6": "no", "b->c:80/tcp6": "no", "b->c:80/udp6": "no", "a->b:80/tcp6": "ok", "c->b:81/tcp6": "ok", "a->c:80/tcp6": "ok" });
    });

    t("policyTypes default: egress rules without policyTypes isolate both ways; ingress rules alone isolate ingress only", async () => {
      await policies([np("b-to-a", { podSelector: { matchLabels: { app: "b" } }, egress: [{ to: [{ podSelector: { matchLabels: { app: "a" } } }], ports: [{ port: 80 }] }] })]);
      await expectMatrix({ "b->a:80": "ok", "b->a:81": "no", "b->c:80": "no", "a->b:80": "no", "c->b:80/udp": "no" });
      await policies([np("b-from-a", { podSelector: { matchLabels: { app: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "a" } } }] }] })]);
      await expectMatrix({ "a->b:80": "ok", "c->b:80": "no", "b->c:80": "ok", "b->a:81/udp": "ok" });
    });

    t("ClusterNetworkPolicy egress: rules in order, the first match decides (Accept before Deny, then swapped)", async () => {
      const accept81 = { name: "c-81", action: "Accept", to: [podsWith({ app: "c" })], protocols: [tcp(81)] };
      const denyY = { name: "no-y", action: "Deny", to: [{ namespaces: { matchLabels: { team: "y" } } }] };
      await policies([cnp("egress-x", { tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } }, egress: [accept81, denyY] })]);
      await expectMatrix({ "a->c:81": "ok", "a->c:80": "no", "b->c:81/udp": "no", "a->c:81/tcp6": "ok", "a->b:80": "ok", "c->a:80": "ok" });
      await policies([cnp("egress-x", { tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } }, egress: [denyY, accept81] })]);
      await expectMatrix({ "a->c:81": "no", "a->c:80": "no", "a->b:80": "ok" });
    });

    t("ClusterNetworkPolicy `networks` peers (IPv4 and IPv6) and port ranges", async () => {
      await policies([cnp("nets", { tier: "Admin", priority: 10, subject: podsWith({ app: "a" }), egress: [
        { name: "v4-range", action: "Deny", to: [{ networks: ["10.244.2.0/24"] }], protocols: [{ tcp: { destinationPort: { range: { start: 81, end: 90 } } } }] },
        { name: "v6-all", action: "Deny", to: [{ networks: ["fd00:244:0:2::/64"] }] },
      ] })]);
      await expectMatrix({ "a->c:81": "no", "a->c:80": "ok", "a->c:81/udp": "ok", "a->c:80/tcp6": "no", "a->c:80/udp6": "no", "b->c:81": "ok", "b->c:80/tcp6": "ok" });
    });

    t("ClusterNetworkPolicy priority ties: the lower name decides, in the kernel as in the evaluator", async () => {
      const rule = (action: string) => ({ tier: "Admin", priority: 7, subject: podsWith({ app: "a" }), ingress: [{ action, from: [{ namespaces: { matchLabels: { team: "y" } } }] }] });
      await policies([cnp("tie-a-deny", rule("Deny")), cnp("tie-b-accept", rule("Accept")), np("deny-all", { podSelector: {} })]);
      await expectMatrix({ "c->a:80": "no", "c->a:81/udp": "no", "b->a:80": "no" });
      await policies([cnp("tie-a-accept", rule("Accept")), cnp("tie-b-deny", rule("Deny")), np("deny-all", { podSelector: {} })]);
      await expectMatrix({ "c->a:80": "ok", "c->a:81/udp": "ok", "b->a:80": "no" });
    });

    t("Baseline Pass: the flow skips the later Baseline Deny and is allowed by default", async () => {
      await policies([
        cnp("base-pass", { tier: "Baseline", priority: 1, subject: { namespaces: {} }, ingress: [{ action: "Pass", from: [{ namespaces: { matchLabels: { team: "y" } } }] }] }),
        cnp("base-deny", { tier: "Baseline", priority: 2, subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
      ]);
      await expectMatrix({ "c->a:80": "ok", "c->b:81/udp": "ok", "b->a:80": "no", "a->c:80": "no" });
    });

    t("Admin Pass falls through to a Baseline Deny when no NetworkPolicy decides, and to a NetworkPolicy that does", async () => {
      const adminPass = cnp("admin-pass", { tier: "Admin", priority: 5, subject: { namespaces: {} }, ingress: [{ action: "Pass", from: [{ namespaces: { matchLabels: { team: "y" } } }] }] });
      const adminDeny = cnp("admin-deny", { tier: "Admin", priority: 10, subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }] });
      const baseDeny = cnp("base-deny", { tier: "Baseline", priority: 1, subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] });
      await policies([adminPass, adminDeny, baseDeny]);
      await expectMatrix({ "c->a:80": "no", "b->a:80": "no" });
      await policies([adminPass, adminDeny, baseDeny, np("a-from-y", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "y" } } }] }] })]);
      await expectMatrix({ "c->a:80": "ok", "c->a:81/tcp6": "ok", "c->b:80": "no", "b->a:80": "no" });
    });

    t("ClusterNetworkPolicy named ports resolve on the destination pod", async () => {
      await policies([cnp("named", { tier: "Admin", priority: 10, subject: podsWith({ app: "a" }), ingress: [{ action: "Deny", from: [{ namespaces: {} }], protocols: [{ destinationNamedPort: "http" }, { destinationNamedPort: "dns" }] }] })]);
      await expectMatrix({ "b->a:81": "no", "c->a:81/tcp6": "no", "c->a:80/udp": "no", "b->a:80": "ok", "c->a:81/udp": "ok", "a->b:81": "ok" });
    });

    const setElems = (n: TestNode, kind: "map" | "set", table: string, name: string): string[] => {
      const r = inNetns(n.ns, ["nft", "-j", "list", kind, "inet", table, name], { allowFail: true });
      if (r.code !== 0) return [];
      const o = JSON.parse(r.stdout).nftables.find((x: any) => x[kind])[kind];
      return (o.elem ?? []).map((e: any) => (Array.isArray(e) ? e[0] : e));
    };

    t("a pod added while a policy is in force is isolated before its served ADD answers", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      expect(JSON.parse(readFileSync(join(n1.dir, "conf/10-mncni.conflist"), "utf8")).plugins[0].policyHold).toBe(true);
      // As in Kubernetes: the Pod (labels, no addresses) exists before its ADD; the agent
      // learns its addresses from the ADD itself.
      writePendingPod(n1, "x", "d", { app: "d" });
      await addPod(n1, "x", "d", { app: "d" });
      expect(setElems(n1, "set", "mncni-policy", "sel_ingress_4")).toContain(pods.d!.ip);
      expect(setElems(n1, "set", "mncni-hold", "held_4")).not.toContain(pods.d!.ip);
      await expectMatrix({ "c->d:80": "no", "d->c:80": "ok" });
      // The API catches up: the source knows d from now on, as the agent does.
      writePod(pods.d!, []);
    });

    t("with no agent answering, a new pod is held (both ways) until the agent has programmed it", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      await stopAgent(n1);
      await addPod(n1, "x", "e", { app: "e" }, [], { manifest: false });
      expect(setElems(n1, "set", "mncni-hold", "held_4")).toContain(pods.e!.ip);
      await expectMatrix({ "c->e:80": "no", "e->c:80": "no", "b->a:80": "no", "a->c:80": "ok" });
      startAgent(n1);
      writePod(pods.e!, []);
      await waitFor("the hold to be released", () => !setElems(n1, "set", "mncni-hold", "held_4").includes(pods.e!.ip), 15_000);
      expect(setElems(n1, "set", "mncni-policy", "sel_ingress_4")).toContain(pods.e!.ip);
      await expectMatrix({ "c->e:80": "no", "e->c:80": "ok" });
    });

    t("a held pod deleted before the agent programmed it leaves the hold with its DEL", async () => {
      await stopAgent(n1);
      try {
        await addPod(n1, "x", "f", { app: "f" }, [], { manifest: false });
        expect(setElems(n1, "set", "mncni-hold", "held_4")).toContain(pods.f!.ip);
        pods.f!.server?.kill("SIGKILL");
        await runtimeOf(n1).del({ containerId: "x-f", netns: netnsPath(pods.f!.netns), ifname: "eth0", args: { K8S_POD_NAMESPACE: "x", K8S_POD_NAME: "f" } });
        expect(setElems(n1, "set", "mncni-hold", "held_4")).not.toContain(pods.f!.ip);
        delete pods.f;
      } finally {
        startAgent(n1);
      }
    });

    t("the agent releases a held address no pod has any more (IPAM released it)", async () => {
      await stopAgent(n1);
      try {
        await addPod(n1, "x", "g", { app: "g" }, [], { manifest: false });
        pods.g!.server?.kill("SIGKILL");
        expect(setElems(n1, "set", "mncni-hold", "held_4")).toContain(pods.g!.ip);
        // What a DEL leaves when it cannot learn the pod's addresses (namespace gone, no
        // prevResult): the reservation released, the hold not.
        rmSync(join(n1.dir, "ipam", "mncni", pods.g!.ip));
      } finally {
        startAgent(n1);
      }
      await waitFor("the stale hold to be released", () => !setElems(n1, "set", "mncni-hold", "held_4").includes(pods.g!.ip), 15_000);
      delete pods.g;
    });

    /** Addresses held on n1 now. */
    const heldNow = () => new Set(setElems(n1, "set", "mncni-hold", "held_4"));

    t("a served ADD for a pod the cache does not know yet waits for the watch: its label-specific policy is in force when the ADD answers", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "isolate-h", namespace: "x" }, spec: { podSelector: { matchLabels: { app: "h" } } } }]);
      const before = heldNow();
      let answered = false;
      const adding = addPod(n1, "x", "h", { app: "h" }, [], { manifest: false }).finally(() => (answered = true));
      // The watch lags behind the ADD: the Pod shows up while the ADD is in progress (its address held).
      await waitFor("the ADD to hold its address (or answer)", () => answered || [...heldNow()].some((ip) => !before.has(ip)), 10_000);
      writePendingPod(n1, "x", "h", { app: "h" });
      await adding;
      // Before the fix: released with no labels, so isolate-h did not select it.
      expect(setElems(n1, "set", "mncni-policy", "sel_ingress_4")).toContain(pods.h!.ip);
      expect(heldNow().has(pods.h!.ip)).toBe(false);
      await expectMatrix({ "c->h:80": "no", "b->h:80": "no", "h->c:80": "ok", "c->a:80": "ok" });
      writePod(pods.h!, []);
    });

    t("a served ADD for a pod the watch never shows keeps it held (both ways), reported, until its labels are known", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "isolate-k", namespace: "x" }, spec: { podSelector: { matchLabels: { app: "k" } } } }]);
      const t0 = Date.now();
      await addPod(n1, "x", "k", { app: "k" }, [], { manifest: false });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
      // Before the fix: released at once with no labels, and c reached k.
      expect(heldNow().has(pods.k!.ip)).toBe(true);
      await expectMatrix({ "c->k:80": "no", "b->k:80": "no", "k->c:80": "no" });
      const log = readFileSync(join(n1.dir, "agent.log"), "utf8");
      expect(log).toContain("pod x/k is not in the cluster state 2 s after its ADD");
      writePod(pods.k!, []);
      await waitFor("the hold of k to be released", () => !heldNow().has(pods.k!.ip), 15_000);
      expect(setElems(n1, "set", "mncni-policy", "sel_ingress_4")).toContain(pods.k!.ip);
      await expectMatrix({ "c->k:80": "no", "k->c:80": "ok" });
    });

    t("with the source stale, a served ADD for a pod it does not know does not wait: held at once, reported", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "isolate-m", namespace: "x" }, spec: { podSelector: { matchLabels: { app: "m" } } } }]);
      const readyz = () => inNetns(n1.ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { allowFail: true }).stdout;
      source.makeStale();
      try {
        await waitFor("the source to be stale (not ready)", () => readyz() === "503", 15_000);
        const t0 = Date.now();
        await addPod(n1, "x", "m", { app: "m" }, [], { manifest: false });
        expect(Date.now() - t0).toBeLessThan(UNKNOWN_POD_WAIT_MS);
        expect(heldNow().has(pods.m!.ip)).toBe(true);
        expect(readFileSync(join(n1.dir, "agent.log"), "utf8")).toContain("pod x/m is not in the cluster state at its ADD (the source is stale)");
      } finally {
        source.restore();
      }
      await expectMatrix({ "c->m:80": "no", "m->c:80": "no" });
      writePod(pods.m!, []);
      await waitFor("the hold of m to be released", () => !heldNow().has(pods.m!.ip), 15_000);
      await expectMatrix({ "c->m:80": "no", "m->c:80": "ok" });
    });

    t("explain --probe catches a real disagreement: a hand-made accept lets through what the evaluator denies", async () => {
      await policies([np("from-b", { podSelector: { matchLabels: { app: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "b" } } }], ports: [{ port: 80 }] }] })]);
      await expectMatrix({ "b->a:81": "no" });
      // The agent stopped (nothing repairs the table meanwhile); an accept for b->a:81 inserted first in the forward hook.
      await stopAgent(n1);
      const chains = JSON.parse(inNetns(n1.ns, ["nft", "-j", "list", "table", "inet", "mncni-policy"]).stdout).nftables.filter((o: any) => o.chain?.hook === "forward");
      expect(chains.length).toBe(1);
      const chain = chains[0].chain.name as string;
      const handle = /# handle (\d+)/.exec(inNetns(n1.ns, ["nft", "--echo", "--handle", "insert", "rule", "inet", "mncni-policy", chain, "ip", "daddr", pods.a!.ip, "tcp", "dport", "81", "accept"]).stdout)![1]!;
      try {
        // The kernel now disagrees with the evaluator: traffic passes, the evaluator denies.
        expect(verdicts(["b->a:81"])).toEqual({ "b->a:81": "no" });
        expect(await matrix(["b->a:81"])).toEqual({ "b->a:81": "ok" });
        // Not spawnSync: the fake API server (the Kubernetes source) answers from this process's event loop.
        const proc = spawn(["ip", "netns", "exec", n1.ns, requireBinary(), "explain", "x/b", "x/a", "--proto", "tcp", "--port", "81", "--probe", "--json", "--source", source.arg,
          "--cni-conf-dir", join(n1.dir, "conf"), "--cache-dir", join(n1.dir, "results")], { stdout: "pipe", stderr: "pipe" });
        const [stdout, code] = [await new Response(proc.stdout).text(), await proc.exited];
        expect(code).toBe(1);
        const ex = JSON.parse(stdout);
        expect(ex.policy.expected).toMatchObject({ allowed: false, deniedIn: "ingress" });
        expect(ex.probe.mismatches.join("\n")).toMatch(/the policy evaluator denies it .*; the traced packet (met no policy drop|was allowed)/);
      } finally {
        inNetns(n1.ns, ["nft", "delete", "rule", "inet", "mncni-policy", chain, "handle", handle]);
        startAgent(n1);
      }
      await expectMatrix({ "b->a:81": "no", "b->a:80": "ok" });
    });

    t("the hold table missing at ADD (no agent to recreate it): the ADD fails naming it and leaves nothing; the agent recreates it", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      const ipamDir = join(n1.dir, "ipam", "mncni");
      const reservations = () => readdirSync(ipamDir).sort();
      const hostVeths = () => (JSON.parse(inNetns(n1.ns, ["ip", "-j", "link", "show", "type", "veth"]).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
      await stopAgent(n1);
      try {
        inNetns(n1.ns, ["nft", "delete", "table", "inet", "mncni-hold"]);
        const [ips, veths] = [reservations(), hostVeths()];
        const netns = createNetns("mnp-pod");
        const e = await runtimeOf(n1).add({ containerId: "x-nohold", netns: netnsPath(netns), ifname: "eth0", args: { K8S_POD_NAMESPACE: "x", K8S_POD_NAME: "nohold" } }).then(() => undefined, (x) => x);
        expect(e).toBeInstanceOf(CniPluginError);
        expect((e as CniPluginError).msg).toMatch(/table inet mncni-hold is missing/);
        expect(reservations()).toEqual(ips);
        expect(hostVeths()).toEqual(veths);
        expect((JSON.parse(inNetns(netns, ["ip", "-j", "link", "show"]).stdout) as { ifname: string }[]).map((l) => l.ifname)).toEqual(["lo"]);
      } finally {
        startAgent(n1);
      }
      await waitFor("the agent to recreate the hold table", () => inNetns(n1.ns, ["nft", "list", "table", "inet", "mncni-hold"], { allowFail: true }).code === 0, 15_000);
    });

    t("verdict log under a flood: the kernel's limit bounds the lines, /metrics counts each, the file rotates past 10 MiB, flows --follow --json prints what is appended", async () => {
      await policies([cnp("deny-y", { tier: "Admin", priority: 10, subject: { namespaces: { matchLabels: { team: "x" } } }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }] })]);
      await expectMatrix({ "c->a:82/udp": "no" });
      const file = join(n1.dir, "flows.log");
      const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
      // Its line written (and counted) before the count is read.
      await waitFor("the probe's line", () => lines(file).some((r) => r.dst.port === 82), 10_000);
      const flood = (r: any) => r.dst.pod === "a" && r.dst.port === 83 && r.protocol === "UDP";
      const counted = () => Number(inNetns(n1.ns, ["curl", "-s", "http://127.0.0.1:9817/metrics"]).stdout.match(/^mncni_agent_policy_verdicts_total\{kind="ClusterNetworkPolicy",namespace="",name="deny-y",verdict="deny"\} (\d+)$/m)?.[1] ?? 0);
      // Past 10 MiB (a sparse tail: no disk used): the next write moves the file to FILE.1.
      run(["truncate", "-s", "11M", file]);
      const before = counted();
      // 300 datagrams, each from a new socket (a new flow through the policy chain), in well under 2 s.
      const t0 = Date.now();
      const sent = inNetns(pods.c!.netns, [PY, "-c", `import socket\nn=0\nfor i in range(300):\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(b"?",("${pods.a!.ip}",83)); s.close(); n+=1\nprint(n)`]).stdout.trim();
      const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
      expect(sent).toBe("300");
      // Settled: the file and the counter agree, twice in a row a second apart (lines still on
      // their way would make them differ or grow).
      let seen = -1;
      await waitFor("the flood's lines, settled", () => {
        const n = lines(file).filter(flood).length;
        const settled = n > 0 && n === seen && counted() - before === n;
        seen = n;
        return settled;
      }, 15_000, 1000);
      const logged = lines(file).filter(flood);
      // limit rate 10/second burst 20 (docs/policy.md): at most 20 + 10 per second of flood.
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.length).toBeLessThanOrEqual(20 + 10 * seconds);
      expect(counted() - before).toBe(logged.length);
      expect(logged.every((r) => r.verdict === "deny" && r.policy?.name === "deny-y" && r.src.pod === "c")).toBe(true);
      // Rotated: the old content (with its sparse tail) is FILE.1, the file holds only new lines.
      expect(statSync(`${file}.1`).size).toBe(11 * 1024 * 1024);
      expect(lines(file).every(flood)).toBe(true);
      // flows --follow --json prints the file, then what the agent appends.
      const follow = spawn([requireBinary(), "flows", "--file", file, "--follow", "--json"], { stdout: "pipe", stderr: "ignore" });
      let out = "";
      const pump = (async () => {
        for await (const chunk of follow.stdout) out += new TextDecoder().decode(chunk);
      })();
      try {
        await waitFor("flows to print the file", () => out.split("\n").filter(Boolean).length >= lines(file).length, 10_000);
        await expectMatrix({ "c->a:84/udp": "no" });
        await waitFor("flows to print the appended line", () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).some((r) => r.dst.port === 84), 10_000);
      } finally {
        follow.kill("SIGINT");
        await follow.exited;
        await pump;
      }
      expect(out.split("\n").filter(Boolean).map((l) => JSON.parse(l))).toEqual(lines(file));
    });

    t("an agent restart keeps the rules in force and rewrites nothing", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      const handle = () => JSON.parse(inNetns(n1.ns, ["nft", "-j", "list", "table", "inet", "mncni-policy"]).stdout).nftables.find((o: any) => o.table).table.handle;
      const before = handle();
      await stopAgent(n1);
      await expectMatrix({ "c->a:80": "no", "b->a:80": "no", "a->c:80": "ok" });
      startAgent(n1);
      await waitFor("the agent to be ready", () => inNetns(n1.ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { allowFail: true }).stdout === "200", 15_000);
      expect(handle()).toBe(before);
      await expectMatrix({ "c->a:80": "no", "a->c:80": "ok" });
    });

    t("a chain edited by hand while the agent was down is repaired by the restarted agent, which says so (#24.14)", async () => {
      await policies([{ kind: "NetworkPolicy", metadata: { name: "deny", namespace: "x" }, spec: { podSelector: {} } }]);
      // A pass after the write records the chains' fingerprint (the agent resyncs every second).
      await Bun.sleep(2_500);
      await stopAgent(n1);
      // Someone lets everything into namespace x's pods: the marker still says the structure is the agent's.
      inNetns(n1.ns, ["nft", "insert", "rule", "inet", "mncni-policy", "ingress-np/x", "accept"]);
      // The kernel now disagrees with the evaluator (which denies it): traffic alone is asked.
      expect(await matrix(["c->a:80"])).toEqual({ "c->a:80": "ok" });
      const logBefore = readFileSync(join(n1.dir, "agent.log"), "utf8").length;
      startAgent(n1);
      await waitFor("the agent to be ready", () => inNetns(n1.ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { allowFail: true }).stdout === "200", 15_000);
      const log = readFileSync(join(n1.dir, "agent.log"), "utf8").slice(logBefore);
      expect(log).toMatch(/repair table inet mncni-policy: its chains differ from what was written/);
      expect(inNetns(n1.ns, ["nft", "list", "chain", "inet", "mncni-policy", "ingress-np/x"]).stdout).not.toMatch(/^\s*accept\s*$/m);
      await expectMatrix({ "c->a:80": "no", "a->c:80": "ok" });
    });

    t("policies removed: the table goes, every pod reaches every pod again", async () => {
      await policies([]);
      expect(marker(n1)).toBe("absent");
      await expectMatrix({ "b->a:80": "ok", "c->a:81/udp": "ok" });
    });

    t("no pass of either agent failed in the policy step (every change above was written as planned)", async () => {
      for (const n of [n1, n2]) {
        const errors = readFileSync(join(n.dir, "agent.log"), "utf8").split("\n").filter((l) => l.includes('"step":"policy"'));
        expect(errors).toEqual([]);
      }
      // Through the API, every request was one deploy/'s role for the agent allows.
      expect(source.forbidden()).toEqual([]);
    });
  });
}
