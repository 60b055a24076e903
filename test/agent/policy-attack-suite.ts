// Attacks on policy isolation (issue #24), with real traffic, in one mode per run (bridge in make test, routed in make test-matrix): one dual-stack
// node with the compiled agent, pods added through the plugin it installed (served ADDs),
// manifests in the agent's manifests directory. The setup of the report: `db/db` (app=db,
// listening dual-stack on 80 and 81), `evil/attacker` (no labels), `jobs/client`
// (role=client), and `db/db-allow-clients` (ingress to app=db from any namespace's
// role=client pods on TCP 80). Each test writes the whole scene it needs (pods and policies),
// waits until the kernel's table is what a fresh compile says, then probes, and holds every
// probe both to what the test states and to the evaluator (`lab check`'s oracle).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { buildClusterState, parseManifests, PolicyEvaluator } from "../../src/cluster/index.ts";
import { createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";
import { agentArgs, buildCluster, destroyCluster, runtimeOf, stopAgent, waitFor, type TestCluster, type TestNode } from "./lab.ts";
import { programmed as programmedOn } from "./policy-kernel.ts";

const PY = "/usr/bin/python3";
// A dual-stack listener (one IPv6 socket taking IPv4 too), as Go, Java and Node servers are by default.
const SERVE = `import socket, threading
def srv(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try: c.sendall(b"ok\\n")
        finally: c.close()
for p in (80, 81): threading.Thread(target=srv, args=(p,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()`;
// ok, or no when nothing answers within two seconds; HOST may be fe80::x%eth0.
const PROBE = `import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    print("ok" if s.recv(8).startswith(b"ok") else "no")
except OSError:
    print("no")`;

interface Pod {
  ns: string;
  name: string;
  netns: string;
  ips: string[];
  labels: Record<string, string>;
  server?: Subprocess;
}

const v4 = (p: Pod) => p.ips.find((a) => !a.includes(":"))!;
const v6 = (p: Pod) => p.ips.find((a) => a.includes(":"))!;
/** The pod's fe80:: address once duplicate address detection is done (before, it cannot be used). */
const linkLocal = (p: Pod): string | undefined => {
  const infos = (JSON.parse(inNetns(p.netns, ["ip", "-j", "-6", "addr", "show", "dev", "eth0"]).stdout) as { addr_info: { local: string; tentative?: boolean }[] }[])
    .flatMap((l) => l.addr_info);
  return infos.find((a) => a.local.startsWith("fe80:") && !a.tentative)?.local;
};

const np = (ns: string, name: string, spec: object) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
const cnp = (name: string, spec: object) => ({ apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec });
const allowClients = np("db", "db-allow-clients", {
  podSelector: { matchLabels: { app: "db" } },
  ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }], ports: [{ port: 80 }] }],
});

/**
 * The attacks in one mode (its own cluster). `make test` runs bridge mode, where most of these
 * defects were found (policy-attack.integration.test.ts); routed mode runs in `make
 * test-matrix` (policy-attack.matrix.test.ts).
 */
export function policyAttackSuite(mode: "bridge" | "routed"): void {
  describe(`policy attacks (${mode} mode)`, () => {
    let c: TestCluster;
    let n1: TestNode;
    const pods: Record<string, Pod> = {};
    const t = (name: string, fn: () => Promise<void>) => test(name, fn, 90_000);
    const start = () => {
      n1.agent = spawn(agentArgs(c, n1, ["--mode", mode, "--cluster-cidr", "fd00:244::/48"]), { stdout: "ignore", stderr: "pipe" });
    };

    const write = (file: string, docs: object[]) => {
      const tmp = join(c.manifests, `.${file}.tmp`);
      writeFileSync(tmp, docs.map((d) => stringify(d)).join("---\n"));
      run(["mv", tmp, join(c.manifests, file)]);
    };
    const stateNow = () => buildClusterState(readdirSync(c.manifests).filter((f) => /^[^.].*\.yaml$/.test(f))
      .flatMap((f) => parseManifests(readFileSync(join(c.manifests, f), "utf8"), f).objects));
    /** Waits until the agent has programmed what the manifests now say (marker hash and every set's elements). */
    const programmed = () => programmedOn(n1, stateNow(), 20_000);

    const podDoc = (p: Pod, o: { phase?: string; created?: string; ips?: string[]; labels?: Record<string, string>; name?: string; ns?: string } = {}) => ({
      apiVersion: "v1", kind: "Pod",
      metadata: { name: o.name ?? p.name, namespace: o.ns ?? p.ns, labels: o.labels ?? p.labels, creationTimestamp: o.created ?? "2026-12-07T03:00:00Z" },
      spec: { nodeName: n1.name, containers: [{ name: "c" }] },
      status: { phase: o.phase ?? "Running", podIP: (o.ips ?? p.ips)[0], podIPs: (o.ips ?? p.ips).map((ip) => ({ ip })) },
    });
    /** The whole scene: the three pods (plus `extra` pod documents) and the policies. */
    const scene = async (policies: object[], extra: object[] = []) => {
      write("pods.yaml", [...Object.values(pods).map((p) => podDoc(p)), ...extra]);
      write("policies.yaml", policies);
      await programmed();
    };

    /** Probes in parallel ("from->HOST:port", HOST a pod name, `pod/6`, or `pod/ll` for its link-local address). */
    const probes = async (list: string[]): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      await Promise.all(list.map(async (p) => {
        const [, from, to, fam, port] = p.match(/^(\w+)->(\w+)(?:\/(6|ll))?:(\d+)$/)!;
        const dst = pods[to!]!;
        const host = fam === "6" ? v6(dst) : fam === "ll" ? `${linkLocal(dst)!}%eth0` : v4(dst);
        const proc = spawn(["ip", "netns", "exec", pods[from!]!.netns, PY, "-c", PROBE, host, port!], { stdout: "pipe", stderr: "ignore" });
        out[p] = (await new Response(proc.stdout).text()).trim();
      }));
      return out;
    };
    /** The probes as stated, and the evaluator's verdict for each cluster-address probe agrees. */
    const expectProbes = async (want: Record<string, "ok" | "no">, o = { evaluator: true }) => {
      expect(await probes(Object.keys(want))).toEqual(want);
      if (!o.evaluator) return;
      const ev = new PolicyEvaluator(stateNow());
      for (const [p, v] of Object.entries(want)) {
        const [, from, to, fam, port] = p.match(/^(\w+)->(\w+)(?:\/(6|ll))?:(\d+)$/)!;
        if (fam === "ll") continue; // no pod's address in the API: nothing for the evaluator
        const src = pods[from!]!;
        const dst = pods[to!]!;
        const verdict = ev.evaluate({ src: { ip: fam === "6" ? v6(src) : v4(src) }, dst: { ip: fam === "6" ? v6(dst) : v4(dst) }, port: Number(port), protocol: "TCP" });
        expect(`${p} ${verdict.allowed ? "ok" : "no"}`).toBe(`${p} ${v}`);
      }
    };

    async function addPod(ns: string, name: string, labels: Record<string, string>): Promise<Pod> {
      const netns = createNetns("mnx-pod");
      const res = (await runtimeOf(n1).add({
        containerId: `${ns}-${name}`, netns: netnsPath(netns), ifname: "eth0", args: { K8S_POD_NAMESPACE: ns, K8S_POD_NAME: name },
      })) as { ips: { address: string }[] };
      const pod: Pod = { ns, name, netns, ips: res.ips.map((i) => i.address.split("/")[0]!), labels };
      const server = spawn(["ip", "netns", "exec", netns, PY, "-c", SERVE], { stdout: "pipe", stderr: "ignore" });
      pod.server = server;
      const reader = server.stdout.getReader();
      await reader.read(); // "listening"
      reader.releaseLock();
      return pod;
    }

    beforeAll(async () => {
      c = buildCluster(1, { dualStack: true });
      n1 = c.nodes[0]!;
      start();
      await waitFor("the agent to write its conflist", () => existsSync(join(n1.dir, "conf/10-mncni.conflist")), 20_000);
      write("ns.yaml", ["db", "evil", "jobs", "other"].map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { team: name } } })));
      pods.db = await addPod("db", "db", { app: "db" });
      pods.attacker = await addPod("evil", "attacker", {});
      pods.client = await addPod("jobs", "client", { role: "client" });
      expect(pods.db.ips.length).toBe(2);
      await waitFor("the pods' link-local addresses to be usable", () => Object.values(pods).every((p) => linkLocal(p) !== undefined), 10_000);
    }, 120_000);

    afterAll(async () => {
      for (const p of Object.values(pods)) p.server?.kill("SIGKILL");
      await destroyCluster(c);
    });

    t("the report's setup: only role=client pods reach db:80", async () => {
      await scene([allowClients]);
      await expectProbes({ "client->db:80": "ok", "client->db/6:80": "ok", "attacker->db:80": "no", "attacker->db/6:80": "no", "client->db:81": "no" });
    });

    t("#24.1 a finished pod's address is not its identity: the pod IPAM gave it to is no client", async () => {
      // A finished Job pod (role=client) still shows the address the attacker has now.
      const finished = podDoc(pods.client!, { ns: "jobs", name: "old-client", phase: "Succeeded", ips: pods.attacker!.ips, created: "2026-12-07T02:00:00Z" });
      await scene([allowClients], [finished]);
      await expectProbes({ "attacker->db:80": "no", "attacker->db/6:80": "no", "client->db:80": "ok" });
    });

    t("#24.1 a hold is never released for a finished pod's address", async () => {
      await scene([allowClients]);
      await stopAgent(n1);
      let held: Pod | undefined;
      try {
        held = await addPod("evil", "newcomer", {});
        const heldSet = () => JSON.parse(inNetns(n1.ns, ["nft", "-j", "list", "set", "inet", "mncni-hold", "held_4"]).stdout).nftables.find((x: any) => x.set).set.elem ?? [];
        expect(heldSet()).toContain(v4(held));
        // The API shows only a finished pod with the newcomer's address (the newcomer's own object is not seen yet).
        write("pods.yaml", [...Object.values(pods).map((p) => podDoc(p)), podDoc(held, { ns: "jobs", name: "old-client", phase: "Failed", labels: { role: "client" } })]);
        start();
        await waitFor("the agent to be ready", () => inNetns(n1.ns, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9817/readyz"], { allowFail: true }).stdout === "200", 20_000);
        await programmed();
        expect(heldSet()).toContain(v4(held));
        pods.newcomer = held;
        await scene([allowClients]);
        await waitFor("the newcomer's hold to be released once its own pod is known", () => !heldSet().includes(v4(held!)), 20_000);
      } finally {
        if (!n1.agent) start();
      }
      await expectProbes({ "newcomer->db:80": "no", "client->db:80": "ok" });
    });

    t("#24.5 two pods showing one address in namespaces that both have policies: one owner, the step keeps working", async () => {
      // An older, not running pod in namespace other shows db's addresses; other has a policy too.
      const ghost = podDoc(pods.db!, { ns: "other", name: "ghost", phase: "Pending", created: "2026-12-07T01:00:00Z", labels: { app: "ghost" } });
      const otherDeny = np("other", "deny", { podSelector: {} });
      await scene([allowClients, otherDeny], [ghost]);
      // db (running, newer) owns its address: its own policy decides.
      await expectProbes({ "client->db:80": "ok", "attacker->db:80": "no" });
      // And later changes still apply: port 81 instead of 80.
      const to81 = np("db", "db-allow-clients", { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }], ports: [{ port: 81 }] }] });
      await scene([to81, otherDeny], [ghost]);
      await expectProbes({ "client->db:80": "no", "client->db:81": "ok" });
      const errors = readFileSync(join(n1.dir, "agent.log"), "utf8").split("\n").filter((l) => l.includes('"step":"policy"') && l.includes("EEXIST"));
      expect(errors).toEqual([]);
    });

    t("#24.2 isolation holds over IPv6 link-local addresses, both ways", async () => {
      // Without policy, pods of one node reach each other over link-local in bridge mode (a
      // router never forwards it): the probe works, and the attack below is a real one.
      await scene([]);
      await expectProbes({ "attacker->db/ll:80": mode === "bridge" ? "ok" : "no" });
      const noEgress = np("evil", "no-egress", { podSelector: {}, policyTypes: ["Egress"] });
      await scene([allowClients, noEgress]);
      // db is isolated for ingress: the attacker gets no answer over db's fe80:: address either.
      // The attacker is isolated for egress: it reaches nobody over link-local (client is not isolated).
      await expectProbes({ "attacker->db/ll:80": "no", "attacker->client/ll:80": "no", "attacker->db:80": "no", "client->db:80": "ok" });
    });

    t("#24.13 neighbour discovery is never subject to policy: an egress-isolated pod reaches what it is allowed over IPv6", async () => {
      const clientEgress = np("jobs", "client-egress", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "db" } } }], ports: [{ port: 80 }] }] });
      await scene([allowClients, clientEgress]);
      // Fresh neighbour caches: the first packet needs neighbour discovery between the two pods.
      for (const p of [pods.client!, pods.db!]) inNetns(p.netns, ["ip", "neigh", "flush", "all"]);
      await expectProbes({ "client->db/6:80": "ok", "client->db:80": "ok", "client->attacker/6:80": "no" });
    });

    t("#24.6 a ClusterNetworkPolicy rule name in another script (over 128 bytes) is programmed", async () => {
      const deny = cnp("deny-clients", {
        tier: "Admin", priority: 5, subject: { namespaces: { matchLabels: { team: "db" } } },
        ingress: [{ name: "ü".repeat(100), action: "Deny", from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } } }] }],
      });
      await scene([allowClients, deny]);
      await expectProbes({ "client->db:80": "no", "client->db/6:80": "no" });
      const comments = JSON.parse(inNetns(n1.ns, ["nft", "-j", "list", "table", "inet", "mncni-policy"]).stdout).nftables
        .filter((o: any) => o.rule?.comment?.includes("deny-clients")).map((o: any) => o.rule.comment as string);
      expect(comments.length).toBeGreaterThan(0);
      for (const cm of comments) expect(Buffer.byteLength(cm)).toBeLessThanOrEqual(128);
    });

    t("#24.4 an Admin Pass rule with an unsupported nodes peer denies everything instead of skipping later Denies", async () => {
      const pass = cnp("pass-nodes", { tier: "Admin", priority: 1, subject: { namespaces: { matchLabels: { team: "jobs" } } }, egress: [{ name: "to-nodes", action: "Pass", to: [{ nodes: {} }] }] });
      const deny = cnp("deny-db", { tier: "Admin", priority: 2, subject: { namespaces: { matchLabels: { team: "jobs" } } }, egress: [{ action: "Deny", to: [{ namespaces: { matchLabels: { team: "db" } } }] }] });
      await scene([allowClients, pass, deny]);
      await expectProbes({ "client->db:80": "no", "client->attacker:80": "no", "attacker->client:80": "ok" });
    });

    t("#24.9 a policy that would compile to more than 5,000 rules is refused: fail closed, and reported", async () => {
      // 900 rules, each with pod peers (two families), an address block and two protocols (6 nft rules each):
      // linear, but still more than 5,000 nft rules.
      const huge = np("db", "huge", { podSelector: { matchLabels: { app: "db" } }, ingress: Array.from({ length: 900 }, (_, i) => ({
        from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }, { ipBlock: { cidr: `192.168.${i % 256}.0/24` } }],
        ports: [{ port: 80 }, { port: 1000 + i, protocol: "UDP" }],
      })) });
      await scene([huge]);
      // The evaluator reads the policy as written (it allows clients); the node refuses it: db is isolated, nothing allowed.
      await expectProbes({ "client->db:80": "no", "attacker->db:80": "no", "client->attacker:80": "ok" }, { evaluator: false });
      const readyz = () => JSON.parse(inNetns(n1.ns, ["curl", "-s", "http://127.0.0.1:9817/readyz?format=json"], { allowFail: true }).stdout || "{}");
      await waitFor("the refusal on /readyz", () => (readyz().warnings ?? []).some((w: string) => w.startsWith("NetworkPolicy db/huge is refused: it would compile to ")), 10_000);
      const metrics = inNetns(n1.ns, ["curl", "-s", "http://127.0.0.1:9817/metrics"]).stdout;
      expect(metrics).toMatch(/^mncni_policy_rejected_objects [1-9]/m);
    });
  });
}

