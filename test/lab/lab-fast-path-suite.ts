// The eBPF fast path end to end in a lab (`lab up --fast-path on`), in one mode and source per
// call (lab-fast-path.e2e.test.ts: bridge on the directory source; lab-fast-path.matrix.test.ts:
// routed on the Kubernetes source):
//   - lab check passes with it;
//   - a plain pair is redirected: a counter in the node's forward hook (a table of the test's own,
//     in the node's namespace) sees none of its packets, the program's counters (the agent's
//     metric) count them as redirected, and the probe `lab explain` traces is not seen by the node;
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
    const redirected = (): number => {
      const m = /^mncni_fast_path_packets_total\{verdict="redirect",reason="local_pod"\} (\d+)$/m.exec(run(["ip", "netns", "exec", ns("node1"), "curl", "-sf", "http://127.0.0.1:9817/metrics"]).stdout);
      return m ? Number(m[1]) : 0;
    };

    beforeAll(() => {
      lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "3", "--mode", o.mode, "--source", o.source, "--fast-path", "on"]);
      const st = labJson<{ pods: { name: string; node: string; ips: string[] }[] }>(name, ["status"]);
      for (const p of st.pods) if (p.node === "node1") ip[p.name] = p.ips.find((a) => !a.includes(":"))!;
      expect(Object.keys(ip).sort()).toEqual(["pod1", "pod2", "pod3"]);
      const pairs = [["pod1", "pod2"], ["pod2", "pod1"], ["pod1", "pod3"], ["pod3", "pod1"], ["pod2", "pod3"]];
      const rules = pairs.map(([a, b]) => `add rule inet mnfptest fw ip saddr ${ip[a!]} ip daddr ${ip[b!]} counter comment "${a}>${b}"`);
      run(["ip", "netns", "exec", ns("node1"), "nft", `add table inet mnfptest; add chain inet mnfptest fw { type filter hook forward priority -400; policy accept; }; ${rules.join("; ")}`]);
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
      lab(name, ["node", "restart-agent", "node1"]);
      await until("the restarted agent to adopt the recorded program and map", () => adoptions() > seen);
      await until("the restarted agent to keep pod1 plain", () => inspect("pod1")?.plain);
      expect(record()).toEqual(rec);
      // The agent stopped (by the PID the lab recorded for it), then what an operator runs.
      const pid = Number(readFileSync(p.agentPid, "utf8"));
      process.kill(pid, "SIGTERM");
      await until("the agent to stop", () => { try { process.kill(pid, 0); return false; } catch { return true; } }, 30_000);
      run(["ip", "netns", "exec", ns("node1"), ...LAB_CMD, "agent", "--uninstall", "--cni-socket", p.cniSocket, "--cni-conf-dir", p.confDir, "--cni-bin-dir", p.binDir, "--ipam-data-dir", p.ipamDir], { allowFail: true });
      const devices = (JSON.parse(run(["ip", "-n", ns("node1"), "-j", "link", "show"]).stdout) as { ifname: string }[]).map((l) => l.ifname);
      const filters = devices.flatMap((d) => (JSON.parse(run(["ip", "netns", "exec", ns("node1"), "tc", "-j", "filter", "show", "dev", d, "ingress"]).stdout || "[]") as any[]).filter((f) => f.options?.bpf_name).map((f) => `${d}: ${f.options.bpf_name}`));
      expect(filters).toEqual([]);
      expect(existsSync(`${p.ipamDir}/mncni/.mncni-fast-path.json`)).toBe(false);
      for (const [kind, id] of [["prog", rec.prog], ["map", rec.map]] as const) {
        await until(`bpf ${kind} ${id} to be freed`, () => run(["bpftool", kind, "show", "id", String(id)], { allowFail: true }).code !== 0, 10_000);
      }
    });
  });
}
