// The node tools as an operator runs them on a cluster node (in the agent's pod) and in the
// lab: `mncni status` names the node by its Kubernetes name (NODE_NAME, as the DaemonSet sets
// it from the downward API), and the lab has the node verbs without `ip netns exec` and
// directory flags (`lab status NODE`, `lab ipam NODE`), checked against independent views.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { IpamReport } from "../../src/obs/ipam-show.ts";
import type { NodeStatus } from "../../src/obs/status.ts";
import type { NodeAttachments } from "../../src/obs/attachments.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { requireBinary } from "../helpers/binary.ts";
import { createNetns, deleteNetns, ipJson, run } from "../helpers/netns.ts";
import { NEEDS_AGENT, WIRING, downAll, lab, newLabName } from "../lab/lab-cli.ts";

setDefaultTimeout(60_000);

/** The `$ mncni lab ...` examples of docs/troubleshooting.md: the command and the output shown. */
function documentedLabCommands(): { argv: string[]; output: string[] }[] {
  const lines = readFileSync(resolve(import.meta.dir, "../../docs/troubleshooting.md"), "utf8").split("\n");
  const out: { argv: string[]; output: string[] }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\$ mncni lab (.*?)\s*(#.*)?$/.exec(lines[i]!);
    if (!m) continue;
    const output: string[] = [];
    for (let j = i + 1; j < lines.length && !lines[j]!.startsWith("```"); j++) output.push(lines[j]!);
    out.push({ argv: m[1]!.split(/\s+/), output });
  }
  return out;
}
afterAll(downAll);

describe("mncni status names the node", () => {
  let ns = "";
  let dir = "";
  beforeAll(() => {
    ns = createNetns("mnst");
    dir = mkdtempSync("/tmp/mncni-status-");
  });
  afterAll(() => {
    if (ns) deleteNetns(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const status = (env: Record<string, string>) => {
    const r = run(["ip", "netns", "exec", ns, requireBinary(), "status", "--json", "--cni-conf-dir", dir, "--cache-dir", dir, "--agent-addr", "127.0.0.1:9"], { env, allowFail: true });
    return JSON.parse(r.stdout) as NodeStatus;
  };
  const base = () => Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k !== "NODE_NAME" && v !== undefined)) as Record<string, string>;

  test("by its Kubernetes name where NODE_NAME is set (the agent's pod), not the host name", () => {
    expect(status({ ...base(), NODE_NAME: "k8s-node-a" }).node).toBe("k8s-node-a");
  });

  test("by the host name elsewhere", () => {
    expect(status(base()).node).toBe(hostname());
  });
});

describe.skipIf(NEEDS_AGENT !== "")(`lab node verbs${NEEDS_AGENT}`, () => {
  const name = newLabName();
  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--wiring", WIRING]);
  });

  test("lab status NODE is `mncni status` on that node: its name, the agent ready, its peer, no problems", () => {
    const r = lab(name, ["status", "node1", "--json"], { allowFail: true });
    const s = JSON.parse(r.stdout) as NodeStatus;
    expect(s.node).toBe("node1");
    expect(s.agent.ready).toBe(true);
    expect(s.problems).toEqual([]);
    expect(s.conflist).toBe(join(nodePaths(name, "node1").confDir, "10-mncni.conflist"));
    // The peer's pod CIDR as the kernel routes it in node1 (independent of the command).
    const kernel = ipJson<{ dst: string; protocol: string }[]>(`${name}-node1`, ["route", "show", "proto", "77"]).map((x) => x.dst);
    expect(s.peers.map((p) => p.podCidr).sort()).toEqual(kernel.filter((d) => d !== "default").sort());
    expect(s.peers.length).toBe(1);
    expect(r.code).toBe(0);
  });

  test("lab status NODE, text: the node by name, and an unknown node refused naming the nodes", () => {
    expect(lab(name, ["status", "node2"]).stdout).toStartWith("node2: mncni ");
    const bad = lab(name, ["status", "node9"], { allowFail: true });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('cannot find node "node9"');
  });

  // The doc's examples come from a lab like this one (2 nodes, 2 pods each, bridge mode); those
  // naming pods this lab does not have (the policy examples' xa, xb) are left out.
  for (const { argv, output } of documentedLabCommands().filter((c) => !c.argv.some((a) => /\/x[a-z]\b/.test(a)))) {
    test(`docs/troubleshooting.md: mncni lab ${argv.join(" ")}`, () => {
      const r = lab(name, argv, { allowFail: true });
      // A healthy lab: nothing to report (explain: 0 whenever computed and traced agree, a drop included).
      expect(r.code).toBe(0);
      // The tables' headers, the MTU a default lab gives and the verdict lines are as shown.
      const words = (l: string) => l.trim().split(/\s+/).join(" ");
      const got = r.stdout.split("\n").map(words);
      for (const l of output.filter((l) => /^[A-Z][A-Z0-9 ]{6,}$/.test(l.trim()))) expect(got).toContain(words(l));
      for (const mtu of output.join("\n").match(/mtu \d+/g) ?? []) expect(r.stdout).toContain(mtu);
      for (const l of output.filter((l) => /^(computed and traced paths agree|no problems found|traced: reached .*)$/.test(l))) expect(r.stdout).toContain(l);
    });
  }

  test("one ADD time: lab status shows the plugin's own, the number inspect shows for the same pod", () => {
    const st = JSON.parse(lab(name, ["status", "--json"]).stdout) as { pods: { k8sNamespace: string; k8sName: string; node: string; addMs?: number; runtimeAddMs?: number }[] };
    expect(st.pods.length).toBe(4);
    for (const node of ["node1", "node2"]) {
      const n = JSON.parse(lab(name, ["inspect", node, "--json"]).stdout) as NodeAttachments;
      for (const p of st.pods.filter((x) => x.node === node)) {
        const a = n.attachments.find((x) => x.podNamespace === p.k8sNamespace && x.podName === p.k8sName)!;
        expect(p.addMs).toBe(a.history.ADD!.durationMs);
        // The runtime's wait (the plugin's process start, ip netns exec) is kept apart, and is longer.
        expect(p.runtimeAddMs!).toBeGreaterThan(p.addMs!);
      }
    }
    expect(lab(name, ["status"]).stdout).toContain("ADD ms: the plugin's own time for the pod's ADD");
  });

  test("lab ipam NODE is `mncni ipam show` on that node: used = the reservation files, no leaks", () => {
    const r = lab(name, ["ipam", "node1", "--json"], { allowFail: true });
    const rep = JSON.parse(r.stdout) as IpamReport;
    expect(rep.node).toBe("node1");
    const files = readdirSync(join(nodePaths(name, "node1").ipamDir, "mncni")).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    expect(files.length).toBe(2);
    expect(rep.ranges.reduce((n, x) => n + x.used, 0)).toBe(files.length);
    expect(rep.leaks).toEqual([]);
    expect(r.code).toBe(0);
  });

  test("the pod MTU and why, where they are shown: mncni status (lab status NODE) and inspect; a changed underlay changes both", async () => {
    const why1450 = "1450 = 1500 underlay − 50 VXLAN headroom kept by auto (one pod MTU for direct and tunnelled peers)";
    // allowFail: node2's pods keep 1450 once its pod MTU is 1350, a problem status reports (exit 1).
    const st = (node: string) => JSON.parse(lab(name, ["status", node, "--json"], { allowFail: true }).stdout) as NodeStatus;
    expect(st("node1").podMTU).toEqual({ mtu: 1450, why: why1450 });
    expect(lab(name, ["status", "node1"]).stdout).toContain(`pod MTU:      ${why1450}`);
    expect(lab(name, ["inspect", "node1"]).stdout.split("\n")[0]).toContain(`pod MTU ${why1450}`);
    expect(lab(name, ["inspect", "node1/pod1"]).stdout).toContain(`node's pod MTU: ${why1450}`);
    // node2's underlay link to 1400 (its eth0, as `ip link` says): its agent computes 1350, and says why.
    lab(name, ["node", "mtu", "node2", "1400"]);
    try {
      expect(ipJson<{ mtu: number }[]>(`${name}-node2`, ["link", "show", "eth0"])[0]!.mtu).toBe(1400);
      let s2 = st("node2");
      for (let i = 0; i < 20 && s2.podMTU?.why === undefined; i++) {
        await Bun.sleep(250);
        s2 = st("node2");
      }
      expect(s2.podMTU).toEqual({ mtu: 1350, why: "1350 = 1400 underlay − 50 VXLAN headroom kept by auto (one pod MTU for direct and tunnelled peers)" });
    } finally {
      lab(name, ["node", "mtu", "node2", "1500"], { allowFail: true });
    }
  });
});
