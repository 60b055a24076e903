// The eBPF fast path end to end in a lab (`lab up --fast-path on`), in one mode and source per
// call (lab-fast-path.e2e.test.ts: bridge on the directory source; lab-fast-path.matrix.test.ts:
// routed on the Kubernetes source):
//   - lab check passes with it;
//   - a plain pair is redirected: a counter in the node's forward hook (a table of the test's own,
//     in the node's namespace) sees none of its packets, the program's counters (the agent's
//     metric) count them as redirected, and the probe `lab explain` traces is not seen by the node;
//   - a plain pair across nodes (host-gw) too: out of the underlay on one node, from it on the
//     other; neither node's forward hook sees it, both nodes' programs count it both ways;
//   - across nodes, a pod a NetworkPolicy selects takes its node's stack (a pod not allowed is
//     refused though its own node sends it by the fast path), and a Service's reply to a client
//     pod on another node takes the client node's stack (conntrack knows it: un-DNAT);
//   - a pair a NetworkPolicy selects takes the stack (the counter sees it) and the policy holds;
//   - a Service's backend takes the stack: the reply to a client pod is un-DNATed (the Service
//     answers from its cluster IP) and the counter sees the reply;
//   - a pod with a hostPort, and a shaped pod, take the stack (and the hostPort answers);
//   - lab check passes with the policy and the Service in force;
//   - an agent restart adopts the program and map (same IDs), and --uninstall removes every
//     filter and the record (the program and map are then freed).
// Every change is waited for as a condition (the agent applies it on its own time).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { nodePaths } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { ingressPrograms } from "../helpers/ingress-programs.ts";
import { downAll, lab, LAB_CMD, labJson, newLabName } from "./lab-cli.ts";

const WAIT_MS = 90_000;

async function until<T>(what: string, get: () => T | undefined | false, ms = WAIT_MS): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = get();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await Bun.sleep(200);
  }
}

interface PodFastPath { plain: boolean; why: string[] }

export function fastPathSuite(o: { mode: "bridge" | "routed"; source: "dir" | "kubernetes" }): void {
  describe(`lab with --fast-path on (${o.mode}, ${o.source} source)`, () => {
    const name = newLabName();
    const ns = (node: string) => `${name}-${node}`;
    const ip: Record<string, string> = {};
    /** node2's pods' IPv4 addresses. */
    const ip2: Record<string, string> = {};
    const inspect = (pod: string) => labJson<{ fastPath?: PodFastPath }>(name, ["inspect", `node1/${pod}`], { allowFail: true }).fastPath;
    const record = () => JSON.parse(readFileSync(`${nodePaths(name, "node1").ipamDir}/mncni/.mncni-fast-path.json`, "utf8")) as { prog: number; map: number };
    /** TCP connections from a pod to host:port, each answered (the echo server names the source it saw). */
    const probe = (from: string, target: string, n = 3) => {
      const r = run(["ip", "netns", "exec", ns(`node1-${from}`), ...LAB_CMD, "lab", "_probe", ...Array(n).fill(target)], { allowFail: true });
      return { ok: r.code === 0, out: r.stdout };
    };
    /** Packets the node's forward hook saw from one pod to another (the test's own counters). */
    const counted = (from: string, to: string): number => {
      const rules = (JSON.parse(run(["ip", "netns", "exec", ns("node1"), "nft", "-j", "list", "chain", "inet", "mnfptest", "fw"]).stdout).nftables as any[]).filter((x) => x.rule);
      const r = rules.find((x) => x.rule.comment === `${from}>${to}`);
      return r.rule.expr.find((e: any) => e.counter).counter.packets as number;
    };

    /** The agent's metric of the program's verdict counters (redirect local_pod: skipped the stack). */
    const redirected = (): number => verdicts("node1", "redirect", "local_pod");
    const verdicts = (node: string, verdict: string, reason: string): number => {
      const m = new RegExp(`^mncni_fast_path_packets_total\\{verdict="${verdict}",reason="${reason}"\\} (\\d+)$`, "m").exec(run(["ip", "netns", "exec", ns(node), "curl", "-sf", "http://127.0.0.1:9817/metrics"]).stdout);
      return m ? Number(m[1]) : 0;
    };
    /** Across nodes: the pairs each node's forward hook counts (the test's own table), by "node1/pod1>node2/pod1". */
    const crossPairs = [["node1/pod1", "node2/pod1"], ["node2/pod1", "node1/pod1"], ["node1/pod1", "node2/pod3"], ["node2/pod3", "node1/pod1"], ["node1/pod2", "node2/pod1"]] as const;
    const addr = (p: string) => (p.startsWith("node1/") ? ip : ip2)[p.slice(6)]!;
    const crossCounted = (node: string, from: string, to: string): number => {
      const rules = (JSON.parse(run(["ip", "netns", "exec", ns(node), "nft", "-j", "list", "chain", "inet", "mnfpx", "fw"]).stdout).nftables as any[]).filter((x) => x.rule);
      return rules.find((x) => x.rule.comment === `${from}>${to}`).rule.expr.find((e: any) => e.counter).counter.packets as number;
    };
    const bothNodes = (from: string, to: string) => ["node1", "node2"].map((n) => crossCounted(n, from, to));
    const probeFrom = (from: string, target: string, n = 3) => {
      const r = run(["ip", "netns", "exec", ns(from.replace("/", "-")), ...LAB_CMD, "lab", "_probe", ...Array(n).fill(target)], { allowFail: true });
      return { ok: r.code === 0, out: r.stdout };
    };
    const inspectAt = (pod: string) => labJson<{ fastPath?: PodFastPath }>(name, ["inspect", pod], { allowFail: true }).fastPath;
    type Side = { node: string; redirected: boolean; why: string[] };
    const explainFast = (from: string, to: string) => labJson<{ fastPath?: Side & { arrival?: Side } }>(name, ["explain", from, to, "--proto", "tcp", "--no-probe"]).fastPath;

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "3", "--mode", o.mode, "--source", o.source, "--fast-path", "on"]);
      const st = labJson<{ pods: { name: string; node: string; ips: string[] }[] }>(name, ["status"]);
      for (const p of st.pods) (p.node === "node1" ? ip : ip2)[p.name] = p.ips.find((a) => !a.includes(":"))!;
      expect(Object.keys(ip).sort()).toEqual(["pod1", "pod2", "pod3"]);
      const pairs = [["pod1", "pod2"], ["pod2", "pod1"], ["pod1", "pod3"], ["pod3", "pod1"], ["pod2", "pod3"]];
      const rules = pairs.map(([a, b]) => `add rule inet mnfptest fw ip saddr ${ip[a!]} ip daddr ${ip[b!]} counter comment "${a}>${b}"`);
      run(["ip", "netns", "exec", ns("node1"), "nft", `add table inet mnfptest; add chain inet mnfptest fw { type filter hook forward priority -400; policy accept; }; ${rules.join("; ")}`]);
      const cross = crossPairs.map(([a, b]) => `add rule inet mnfpx fw ip saddr ${addr(a)} ip daddr ${addr(b)} counter comment "${a}>${b}"`);
      for (const node of ["node1", "node2"]) run(["ip", "netns", "exec", ns(node), "nft", `add table inet mnfpx; add chain inet mnfpx fw { type filter hook forward priority -400; policy accept; }; ${cross.join("; ")}`]);
    });
    afterAll(downAll);

    test("lab check passes", () => {
      const r = lab(name, ["check"], { allowFail: true });
      expect({ code: r.code, out: r.code ? r.stdout : "" }).toEqual({ code: 0, out: "" });
    });

    test("a plain pair is redirected: the node's forward hook counts none of its packets, and the node does not see the traced probe", async () => {
      await until("pod1 and pod2 of node1 in the plain-pods map", () => inspect("pod1")?.plain && inspect("pod2")?.plain);
      const before = [counted("pod1", "pod2"), counted("pod2", "pod1")];
      const program = redirected();
      const p = probe("pod1", `${ip.pod2}:7777`);
      expect(p.ok).toBe(true);
      expect(p.out).toContain(`seen as ${ip.pod1}`);
      expect([counted("pod1", "pod2"), counted("pod2", "pod1")]).toEqual(before);
      // Three connections, both ways: at least a SYN, a SYN-ACK and an ACK each went by the program.
      expect(redirected() - program).toBeGreaterThanOrEqual(9);
      const ex = labJson<{ fastPath?: { redirected: boolean }; probe?: { places: { place: string; verdict: string }[]; mismatches: string[] } }>(name, ["explain", "node1/pod1", "node1/pod2", "--proto", "tcp"]);
      expect(ex.fastPath?.redirected).toBe(true);
      expect(ex.probe?.places.find((t) => t.place === "node1")?.verdict).toBe("not seen");
      expect(ex.probe?.mismatches).toEqual([]);
    });

    test("a plain pair across nodes (host-gw) is redirected both ways: neither node's forward hook sees it, both nodes' programs count it", async () => {
      await until("node1/pod1 and node2/pod1 in their nodes' plain-pods maps", () => inspectAt("node1/pod1")?.plain && inspectAt("node2/pod1")?.plain);
      // The host-gw routes map and the underlay programs follow the routes on the agents' own time.
      await until("explain to see both nodes carry it", () => { const f = explainFast("node1/pod1", "node2/pod1"); return f?.redirected && f.arrival?.redirected; });
      const counts = () => [bothNodes("node1/pod1", "node2/pod1"), bothNodes("node2/pod1", "node1/pod1")];
      const before = counts();
      const metric = () => [verdicts("node1", "redirect", "remote_pod"), verdicts("node2", "redirect", "from_underlay"), verdicts("node2", "redirect", "remote_pod"), verdicts("node1", "redirect", "from_underlay")];
      const program = metric();
      const p = probeFrom("node1/pod1", `${ip2.pod1}:7777`);
      expect(p.ok).toBe(true);
      expect(p.out).toContain(`seen as ${ip.pod1}`);
      expect(counts()).toEqual(before);
      // Three connections: at least one packet each way per connection on each side.
      const grew = metric().map((n, i) => n - program[i]!);
      expect(grew.every((n) => n >= 3)).toBe(true);
      const ex = labJson<{ probe?: { places: { place: string; verdict: string }[]; mismatches: string[] } }>(name, ["explain", "node1/pod1", "node2/pod1", "--proto", "tcp"]);
      expect(["node1", "node2"].map((n) => ex.probe?.places.find((t) => t.place === n)?.verdict)).toEqual(["not seen", "not seen"]);
      expect(ex.probe?.mismatches).toEqual([]);
    });

    test("a pair a NetworkPolicy selects takes the stack, and the policy holds", async () => {
      lab(name, ["label", "pod", "default/node1-pod3", "role=db"]);
      lab(name, ["label", "pod", "default/node1-pod1", "role=client"]);
      const file = `/tmp/${name}-np.json`;
      await Bun.write(file, JSON.stringify({
        apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "db-from-client", namespace: "default" },
        spec: { podSelector: { matchLabels: { role: "db" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }] }] },
      }));
      lab(name, ["apply", "-f", file]);
      const why = "selected by NetworkPolicy default/db-from-client (ingress)";
      await until(`pod3 out of the plain-pods map: ${why}`, () => { const f = inspect("pod3"); return f && !f.plain && f.why.join("; ").includes(why); });
      // The policy is in force once pod2 (no role) is refused.
      await until("the policy to refuse pod2", () => !probe("pod2", `${ip.pod3}:7777`, 1).ok);
      // pod1's label may reach the agent a pass after the policy.
      await until("the policy to admit pod1", () => probe("pod1", `${ip.pod3}:7777`, 1).ok);
      const before = counted("pod1", "pod3");
      expect(probe("pod1", `${ip.pod3}:7777`).ok).toBe(true);
      expect(counted("pod1", "pod3")).toBeGreaterThan(before);
      expect(counted("pod3", "pod1")).toBeGreaterThan(0);
      const ex = labJson<{ fastPath?: { redirected: boolean; why: string[] } }>(name, ["explain", "node1/pod1", "node1/pod3", "--proto", "tcp", "--no-probe"]);
      expect(ex.fastPath?.redirected).toBe(false);
      expect(ex.fastPath?.why.join("; ")).toContain("destination: selected by NetworkPolicy default/db-from-client");
      // pod1 itself (no policy selects it for egress) stays plain.
      expect(inspect("pod1")?.plain).toBe(true);
    });

    test("across nodes, a pod a NetworkPolicy selects takes its node's stack, and the policy holds", async () => {
      // The policy of the test before selects role=db pods, from role=client pods (node1/pod1).
      lab(name, ["label", "pod", "default/node2-pod3", "role=db"]);
      const why = "selected by NetworkPolicy default/db-from-client (ingress)";
      await until(`node2/pod3 out of the plain-pods map: ${why}`, () => { const f = inspectAt("node2/pod3"); return f && !f.plain && f.why.join("; ").includes(why); });
      // node1/pod2 (no role) is plain on node1, which sends it by the fast path: node2's stack refuses it.
      await until("the policy to refuse node1/pod2", () => !probeFrom("node1/pod2", `${ip2.pod3}:7777`, 1).ok);
      await until("the policy to admit node1/pod1", () => probeFrom("node1/pod1", `${ip2.pod3}:7777`, 1).ok);
      const before = crossCounted("node2", "node1/pod1", "node2/pod3");
      expect(probeFrom("node1/pod1", `${ip2.pod3}:7777`).ok).toBe(true);
      expect(crossCounted("node2", "node1/pod1", "node2/pod3")).toBeGreaterThan(before);
      expect(crossCounted("node2", "node2/pod3", "node1/pod1")).toBeGreaterThan(0);
      const f = explainFast("node1/pod1", "node2/pod3");
      expect(f?.arrival?.redirected).toBe(false);
      expect(f?.arrival?.why.join("; ")).toContain(`destination: ${why}`);
    });

    test("a Service backend takes the stack: the reply to a client pod is un-DNATed, the Service works", async () => {
      lab(name, ["label", "pod", "default/node1-pod2", "svc=web"]);
      const out = lab(name, ["service", "add", "default/web", "--selector", "svc=web", "--port", "80:7777/TCP"]).stdout;
      const clusterIP = /created: ([0-9.]+)/.exec(out)![1]!;
      const why = "a backend of Service default/web";
      await until(`pod2 out of the plain-pods map: ${why}`, () => { const f = inspect("pod2"); return f && !f.plain && f.why.join("; ").includes(why); });
      const before = counted("pod2", "pod1");
      // The agent's proxy programs the Service on its own time.
      const p = await until("the Service to answer pod1", () => { const r = probe("pod1", `${clusterIP}:80`); return r.ok ? r : undefined; });
      expect(p.out).toContain(`seen as ${ip.pod1}`);
      expect(counted("pod2", "pod1")).toBeGreaterThan(before);
      // A client on the other node: the backend's reply reaches node2 from the underlay to a
      // plain pod, and takes node2's stack (its conntrack knows the flow: un-DNAT there).
      const [seen, known] = [crossCounted("node2", "node1/pod2", "node2/pod1"), verdicts("node2", "stack", "conntrack")];
      const q = await until("the Service to answer node2/pod1", () => { const r = probeFrom("node2/pod1", `${clusterIP}:80`); return r.ok ? r : undefined; });
      expect(q.out).toContain(`seen as ${ip2.pod1}`);
      expect(crossCounted("node2", "node1/pod2", "node2/pod1")).toBeGreaterThan(seen);
      expect(verdicts("node2", "stack", "conntrack")).toBeGreaterThan(known);
    });

    test("a pod with a hostPort and a shaped pod take the stack; the hostPort answers a plain pod", async () => {
      lab(name, ["pod", "add", "node1", "hp", "--host-port", "18080:7777/TCP"]);
      lab(name, ["pod", "add", "node1", "bw", "--ingress-bandwidth", "100M", "--egress-bandwidth", "100M"]);
      await until("hp out of the plain-pods map: hostPort", () => { const f = inspect("hp"); return f && !f.plain && f.why.join("; ").includes("it has a hostPort"); });
      await until("bw out of the plain-pods map: shaped", () => { const f = inspect("bw"); return f && !f.plain && f.why.join("; ").includes("is shaped (bandwidth)"); });
      const node1 = labJson<{ nodes: { name: string; address: string }[] }>(name, ["status"]).nodes.find((n) => n.name === "node1")!.address;
      expect(await until("the hostPort to answer pod1", () => probe("pod1", `${node1}:18080`).ok)).toBe(true);
    });

    test("lab check passes with the policy and the Service in force", () => {
      const r = lab(name, ["check"], { allowFail: true });
      expect({ code: r.code, out: r.code ? r.stdout : "" }).toEqual({ code: 0, out: "" });
    });

    test("an agent restart adopts the program and map; --uninstall removes every filter and the record, and nothing of them is left", async () => {
      const rec = record();
      const p = nodePaths(name, "node1");
      const adopted = `adopt fast path program ${rec.prog} and map ${rec.map}`;
      const adoptions = () => readFileSync(p.agentLog, "utf8").split(adopted).length - 1;
      const seen = adoptions();
      /** The programs on node1's devices' ingress (tcx and clsact), by name and device. */
      const ours = () => (JSON.parse(run(["ip", "-n", ns("node1"), "-j", "link", "show"]).stdout) as { ifname: string }[]).map((l) => l.ifname)
        .flatMap((d) => ingressPrograms(ns("node1"), d).map((f) => `${d}: ${f.name} ${f.id} ${f.hook}`)).sort();
      const underlayAdoptions = () => readFileSync(p.agentLog, "utf8").split("adopt fast path underlay program").length - 1;
      const adoptedBefore = underlayAdoptions();
      const held = ours();
      expect(held.filter((f) => f.includes("mncni_underlay")).length).toBe(1);
      // On tcx (this kernel has it), the pods' program and the underlay's.
      expect(held.every((f) => f.endsWith(" tcx"))).toBe(true);
      expect(held.filter((f) => f.includes("mncni_pod_redir")).length).toBeGreaterThan(0);
      lab(name, ["node", "restart-agent", "node1"]);
      await until("the restarted agent to adopt the recorded program and map", () => adoptions() > seen);
      await until("the restarted agent to keep pod1 plain", () => inspect("pod1")?.plain);
      // The underlay program too: adopted by its recorded ID (the same filters, the same programs).
      await until("the restarted agent to adopt the underlay program", () => underlayAdoptions() > adoptedBefore);
      expect(ours()).toEqual(held);
      expect(record()).toEqual(rec);
      // The agent stopped (by the PID the lab recorded for it), then what an operator runs.
      const pid = Number(readFileSync(p.agentPid, "utf8"));
      process.kill(pid, "SIGTERM");
      await until("the agent to stop", () => { try { process.kill(pid, 0); return false; } catch { return true; } }, 30_000);
      run(["ip", "netns", "exec", ns("node1"), ...LAB_CMD, "agent", "--uninstall", "--cni-socket", p.cniSocket, "--cni-conf-dir", p.confDir, "--cni-bin-dir", p.binDir, "--ipam-data-dir", p.ipamDir], { allowFail: true });
      const devices = (JSON.parse(run(["ip", "-n", ns("node1"), "-j", "link", "show"]).stdout) as { ifname: string }[]).map((l) => l.ifname);
      const filters = devices.flatMap((d) => ingressPrograms(ns("node1"), d).map((f) => `${d}: ${f.name}`));
      expect(filters).toEqual([]);
      expect(existsSync(`${p.ipamDir}/mncni/.mncni-fast-path.json`)).toBe(false);
      for (const [kind, id] of [["prog", rec.prog], ["map", rec.map]] as const) {
        await until(`bpf ${kind} ${id} to be freed`, () => run(["bpftool", kind, "show", "id", String(id)], { allowFail: true }).code !== 0, 10_000);
      }
    });
  });
}
