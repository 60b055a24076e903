// `mncni lab up --runtime containerd`, the heavier combinations (`make test-matrix`; the
// representative one is lab.test.ts): routed mode, NetworkPolicy through containerd's
// sandboxes (deny, then allow, with real connections), containerd restarted with pods running,
// nodes added and removed (with static wiring), and the agent killed while containerd creates
// sandboxes. Independent views as in lab.test.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CheckReport } from "../../src/lab/check.ts";
import { KINDS } from "../../src/lab/apiserver/kinds.ts";
import { labClient } from "../../src/lab/control-plane.ts";
import { CriClient, type PodSandboxConfig } from "../../src/lab/cri/client.ts";
import { k8sPodName } from "../../src/lab/write-manifests.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { downAll, lab, labJson, leftovers, newLabName } from "../lab/lab-cli.ts";
import { cniCalls, eventually, labState, nodeDir, pods, probe, processesNaming, reservedIps, sandboxes, socketOf } from "./lab-containerd.ts";

setDefaultTimeout(180_000);
afterAll(downAll);

const up = (name: string, extra: string[] = []) => lab(name, ["up", "-q", "--nodes", "2", "--runtime", "containerd", ...(extra.includes("--wiring") ? [] : ["--wiring", "agent"]), ...extra]);
const check = (name: string) => labJson<CheckReport>(name, ["check"], { allowFail: true });

describe("containerd lab in routed mode, dual-stack", () => {
  const name = newLabName();
  beforeAll(() => up(name, ["--pods-per-node", "2", "--mode", "routed", "--ipv6"]));
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("lab check passes through containerd's sandboxes, both families (the sandbox's additional IP is the IPv6 one)", async () => {
    const r = check(name);
    expect([r.problems, r.failed]).toEqual([[], 0]);
    expect(r.results.some((x) => x.family === 6)).toBe(true);
    for (const p of pods(name)) {
      expect(p.namespace).toStartWith("cni-");
      expect(p.ips.map((ip) => (ip.includes(":") ? 6 : 4))).toEqual([4, 6]);
    }
    const s = labState(name);
    const c = new CriClient(socketOf(name, "node1"));
    try {
      const pod = s.nodes.find((n) => n.name === "node1")!.pods[0]!;
      const { status } = await c.podSandboxStatus(pod.sandboxId!);
      expect([status.network?.ip, ...(status.network?.additional_ips ?? []).map((x) => x.ip)]).toEqual(pod.ips);
    } finally {
      c.close();
    }
  });
});

describe("containerd lab: NetworkPolicy on containerd's sandboxes", () => {
  const name = newLabName();
  const dir = mkdtempSync(join(tmpdir(), `${name}-pol-`));
  const ns = (pod: string) => pods(name).find((p) => p.name === pod)!;
  const connects = (from: string, to: string) => probe(ns(from).namespace, `${ns(to).ips[0]}:7777`) !== null;
  const apply = (file: string, yaml: string) => {
    writeFileSync(join(dir, file), yaml);
    lab(name, ["apply", "-f", join(dir, file)]);
  };

  beforeAll(() => {
    up(name, ["--pods-per-node", "0"]);
    lab(name, ["pod", "add", "node2", "web", "--namespace", "shop", "--labels", "role=web"]);
    lab(name, ["pod", "add", "node1", "fe", "--namespace", "frontend", "--labels", "role=fe"]);
    lab(name, ["pod", "add", "node1", "ot", "--namespace", "other", "--labels", "role=ot"]);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("before any policy every pod reaches web", () => {
    expect(connects("fe", "web")).toBe(true);
    expect(connects("ot", "web")).toBe(true);
  });

  test("deny: nothing reaches the shop's pods", async () => {
    apply("deny.yaml", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: default-deny, namespace: shop }
spec:
  podSelector: {}
  policyTypes: [Ingress]
`);
    expect(await eventually(() => connects("fe", "web"), false)).toBe(false);
    expect(connects("ot", "web")).toBe(false);
    expect(connects("ot", "fe")).toBe(true);
  });

  test("then allow from the frontend namespace: fe reaches web, ot still does not", async () => {
    apply("allow.yaml", `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: web-from-frontend, namespace: shop }
spec:
  podSelector: { matchLabels: { role: web } }
  ingress:
  - from:
    - namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: frontend } }
`);
    expect(await eventually(() => connects("fe", "web"), true)).toBe(true);
    expect(connects("ot", "web")).toBe(false);
  });

  test("a sandbox created with the policies in force is held to them from its first packet", async () => {
    lab(name, ["pod", "add", "node1", "fe2", "--namespace", "frontend", "--labels", "role=fe"]);
    lab(name, ["pod", "add", "node1", "ot2", "--namespace", "other", "--labels", "role=ot"]);
    expect(connects("fe2", "web")).toBe(true);
    expect(connects("ot2", "web")).toBe(false);
  });
});

describe("containerd lab: containerd restarted with pods running", () => {
  const name = newLabName();
  beforeAll(() => up(name, ["--pods-per-node", "2"]));
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("the sandboxes and their network survive; pods are added and removed through the new containerd", async () => {
    const before = labState(name).nodes.find((n) => n.name === "node1")!;
    lab(name, ["node", "restart-runtime", "node1"]);
    const after = labState(name).nodes.find((n) => n.name === "node1")!;
    expect(after.containerdPid).not.toBe(before.containerdPid);
    expect(run(["ip", "netns", "identify", String(after.containerdPid)]).stdout.trim()).toBe(after.ns);
    // containerd's own view after the restart: the same sandboxes, ready, with the same addresses.
    const c = new CriClient(socketOf(name, "node1"));
    try {
      for (const p of before.pods) {
        const { status } = await c.podSandboxStatus(p.sandboxId!);
        expect([status.state, status.network?.ip]).toEqual(["SANDBOX_READY", p.ips[0]]);
      }
    } finally {
      c.close();
    }
    const r = check(name);
    expect([r.problems, r.failed]).toEqual([[], 0]);

    lab(name, ["pod", "add", "node1", "late"]);
    const late = labState(name).nodes.find((n) => n.name === "node1")!.pods.find((p) => p.name === "late")!;
    expect(cniCalls(name, "node1").some((x) => x.command === "ADD" && x.containerId === late.sandboxId)).toBe(true);
    // A sandbox created before the restart is removed through the new containerd: DEL ran, the address is free.
    const old = before.pods[0]!;
    lab(name, ["pod", "remove", "node1", old.name]);
    expect(cniCalls(name, "node1").some((x) => x.command === "DEL" && x.containerId === old.sandboxId)).toBe(true);
    expect(reservedIps(name, "node1").some((f) => f.endsWith(old.ips[0]!))).toBe(false);
    expect((await sandboxes(name, "node1")).map((b) => b.id)).not.toContain(old.sandboxId);
    expect(check(name).failed).toBe(0);
  });
});

describe("containerd lab on the Kubernetes source: a sandbox whose DEL never came", () => {
  const name = newLabName();
  // The agents collect after 3 s (default 120 s), a pass every 2 s (the lab's --resync).
  beforeAll(() => up(name, ["--nodes", "1", "--pods-per-node", "1", "--source", "kubernetes", "--sandbox-gc-grace", "3"]));
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("is DELed by the agent once no Pod in the API shows its address; one whose Pod is still there, and a live one, are kept", async () => {
    lab(name, ["pod", "add", "node1", "held"]);
    lab(name, ["pod", "add", "node1", "lost"]);
    const node = labState(name).nodes.find((n) => n.name === "node1")!;
    const [live, held, lost] = ["pod1", "held", "lost"].map((n) => node.pods.find((p) => p.name === n)!);
    const reserved = (ip: string) => reservedIps(name, "node1").some((f) => f.endsWith(`/${ip}`) || f === ip);
    const vethOf = (id: string) => ipJson<{ ifname: string; ifalias?: string }[]>(node.ns, ["link", "show", "type", "veth"]).filter((l) => l.ifalias?.includes(id));
    const dels = (id: string) => cniCalls(name, "node1").filter((c) => c.command === "DEL" && c.containerId === id);
    // Behind containerd's back, held's sandbox first, then lost's: its processes killed and its
    // namespace unmounted, so the pod's veth pair goes; containerd calls no DEL.
    for (const p of [held!, lost!]) {
      for (const pid of run(["ip", "netns", "pids", p.ns]).stdout.trim().split(/\s+/).filter(Boolean)) process.kill(Number(pid), "SIGKILL");
      run(["ip", "netns", "delete", p.ns]);
    }
    for (let i = 0; i < 400 && (vethOf(held!.sandboxId!).length || vethOf(lost!.sandboxId!).length); i++) await Bun.sleep(50);
    expect([vethOf(held!.sandboxId!), vethOf(lost!.sandboxId!)]).toEqual([[], []]);
    // lost's Pod is deleted in the API (as when its node's runtime lost it: nothing ran its DEL).
    await labClient(labState(name)).delete(KINDS.find((k) => k.plural === "pods")!, { namespace: lost!.namespace, name: k8sPodName(lost!) });
    // Collected: the agent ran the DEL (the node's invocation log, the plugin's own record) and the address is free.
    for (let i = 0; i < 600 && reserved(lost!.ips[0]!); i++) await Bun.sleep(100);
    expect(reserved(lost!.ips[0]!)).toBe(false);
    expect(dels(lost!.sandboxId!)).toHaveLength(1);
    expect(readFileSync(join(nodeDir(name, "node1"), "agent.log"), "utf8")).toContain(`collect sandbox ${lost!.sandboxId}`);
    // held's sandbox went first, so it has looked gone longer than lost's: only its Pod, which
    // still shows its address, kept it. The live pod keeps its address, veth and traffic.
    expect([reserved(held!.ips[0]!), dels(held!.sandboxId!)]).toEqual([true, []]);
    expect([reserved(live!.ips[0]!), vethOf(live!.sandboxId!).length, dels(live!.sandboxId!)]).toEqual([true, 1, []]);
    expect(run(["ip", "netns", "exec", node.ns, "ping", "-c", "1", "-W", "2", live!.ips[0]!], { allowFail: true }).code).toBe(0);
    // held's Pod removed through the lab (kubelet's way: StopPodSandbox, whose DEL frees the address).
    lab(name, ["pod", "remove", "node1", "held"]);
    expect(reserved(held!.ips[0]!)).toBe(false);
  });
});

describe("containerd lab: containerd killed, then lab down", () => {
  const name = newLabName();
  beforeAll(() => up(name, ["--pods-per-node", "2"]));

  test("a node whose containerd died is not ready, its pods keep their network; restart-runtime brings it back with its sandboxes", async () => {
    const s = labState(name);
    process.kill(s.nodes[0]!.containerdPid!, "SIGKILL");
    const st = labJson<{ nodes: { name: string; ready: boolean; notReady: string[]; containerdAlive?: boolean }[] }>(name, ["status"]);
    const n1 = st.nodes.find((n) => n.name === "node1")!;
    expect([n1.ready, n1.containerdAlive, n1.notReady.some((r) => r.startsWith("containerd (pid"))]).toEqual([false, false, true]);
    expect(st.nodes.find((n) => n.name === "node2")!.ready).toBe(true);
    expect(check(name).failed).toBe(0);
    lab(name, ["node", "restart-runtime", "node1"]);
    expect(labJson<{ nodes: { name: string; ready: boolean }[] }>(name, ["status"]).nodes.every((n) => n.ready)).toBe(true);
    expect((await sandboxes(name, "node1")).map((b) => `${b.id} ${b.state}`).sort()).toEqual(s.nodes[0]!.pods.map((p) => `${p.sandboxId} SANDBOX_READY`).sort());
  });

  test("down leaves nothing: no shim or sandbox process, namespace, resolv.conf or libcni cache entry of a sandbox whose DEL never ran", () => {
    const s = labState(name);
    // node2's containerd dies: its sandboxes' DEL never runs (node1's go through CRI).
    process.kill(s.nodes[1]!.containerdPid!, "SIGKILL");
    const ids = s.nodes.flatMap((n) => n.pods.map((p) => p.sandboxId!));
    // The sandboxes' pause processes (each alone in its sandbox's namespace).
    const pauses = s.nodes.flatMap((n) => n.pods.flatMap((p) => run(["ip", "netns", "pids", p.ns]).stdout.split(/\s+/).filter(Boolean)));
    expect(pauses.length).toBe(ids.length);
    // containerd's libcni cached the results (it has no setting for where).
    expect(readdirSync("/var/lib/cni/results").filter((f) => ids.some((id) => f.includes(id))).length).toBe(2 * ids.length);
    lab(name, ["down", "-q"]);
    expect(leftovers(name)).toEqual([]);
    for (const n of s.nodes) expect(processesNaming(socketOf(name, n.name))).toEqual([]);
    for (const p of s.nodes.flatMap((n) => n.pods)) expect([existsSync(`/run/netns/${p.ns}`), existsSync(`/etc/netns/${p.ns}`)]).toEqual([false, false]);
    expect(readdirSync("/var/lib/cni/results").filter((f) => ids.some((id) => f.includes(id)))).toEqual([]);
    expect(pauses.filter((pid) => existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("/pause"))).toEqual([]);
  });
});

describe("containerd lab: nodes added and removed", () => {
  const name = newLabName();
  beforeAll(() => up(name, ["--pods-per-node", "1", "--wiring", "static"]));
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("a node added gets its own containerd and sandboxes (static wiring: the reference chain); a node removed takes its containerd, shims and sandboxes", async () => {
    lab(name, ["node", "add", "node3", "--pods", "1"]);
    const n3 = labState(name).nodes.find((n) => n.name === "node3")!;
    expect((await sandboxes(name, "node3")).map((b) => b.id)).toEqual([n3.pods[0]!.sandboxId!]);
    const r = check(name);
    expect([r.problems, r.failed]).toEqual([[], 0]);
    lab(name, ["node", "remove", "node3"]);
    expect(processesNaming(nodeDir(name, "node3"))).toEqual([]);
    expect(existsSync(`/run/netns/${n3.pods[0]!.ns}`)).toBe(false);
    expect(check(name).failed).toBe(0);
  });
});

describe("containerd lab: the agent killed while containerd creates sandboxes", () => {
  const name = newLabName();
  beforeAll(() => up(name, ["--pods-per-node", "0"]));
  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("each sandbox comes up or fails leaving nothing; kubelet's retry succeeds; the restarted agent serves again", async () => {
    const node = labState(name).nodes.find((n) => n.name === "node1")!;
    const c = new CriClient(socketOf(name, "node1"));
    // As kubelet: six Pods at once on node1, through the lab node's containerd.
    const cfg = (n: string, attempt = 0): PodSandboxConfig => ({
      metadata: { name: n, namespace: "default", uid: `uid-${name}-${n}`, attempt },
      hostname: n,
      labels: { app: n, "mncni.dev/lab": name },
    });
    const served = () => cniCalls(name, "node1").filter((x) => x.command === "ADD" && x.served).length;
    const before = served();
    const names = ["k0", "k1", "k2", "k3", "k4", "k5"];
    const runs = names.map((n) => c.runPodSandbox(cfg(n)).then((id) => ({ n, id }), (e: Error) => ({ n, err: e.message })));
    for (let i = 0; i < 1000 && served() === before; i++) await Bun.sleep(10);
    process.kill(node.agentPid!, "SIGKILL");
    const first = await Promise.all(runs);
    try {
      const failed = first.filter((r) => "err" in r);
      // A call the agent had taken when it died is answered "try again" (containerd fails the sandbox) ...
      for (const r of failed) expect(r.err).toContain("try again");
      // ... and leaves nothing: containerd has no sandbox of it.
      const boxes = await c.listPodSandbox({ "mncni.dev/lab": name });
      expect(boxes.map((b) => `${b.metadata.name} ${b.state}`).sort()).toEqual(first.flatMap((r) => ("id" in r ? [`${r.n} SANDBOX_READY`] : [])).sort());
      // kubelet's retry (the plugin alone now) succeeds.
      const ids = first.flatMap((r) => ("id" in r ? [r.id] : []));
      for (const r of failed) ids.push(await c.runPodSandbox(cfg(r.n, 1)));
      const ips = new Set<string>();
      for (const id of ids) {
        const { status } = await c.podSandboxStatus(id);
        const ping = run(["ip", "netns", "exec", node.ns, "ping", "-c", "1", "-W", "2", status.network!.ip], { allowFail: true });
        expect({ id, state: status.state, ping: ping.code === 0 ? "ok" : ping.stdout + ping.stderr }).toEqual({ id, state: "SANDBOX_READY", ping: "ok" });
        ips.add(status.network!.ip);
      }
      expect(ips.size).toBe(names.length);
      expect(reservedIps(name, "node1").length).toBe(names.length);
      // The restarted agent serves the next sandbox.
      lab(name, ["node", "restart-agent", "node1"]);
      const n = served();
      lab(name, ["pod", "add", "node1", "after"]);
      expect(served()).toBe(n + 1);
      for (const id of ids) {
        await c.stopPodSandbox(id);
        await c.removePodSandbox(id);
      }
      expect(reservedIps(name, "node1").length).toBe(1);
      expect(ipJson<{ ifalias?: string }[]>(node.ns, ["link", "show", "type", "veth"]).filter((l) => ids.some((id) => l.ifalias?.includes(id)))).toEqual([]);
    } finally {
      c.close();
    }
  });
});
