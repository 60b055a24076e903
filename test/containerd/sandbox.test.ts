// containerd drives mncni (#29): containerd 1.6 (Debian's) runs in a throwaway node
// namespace with the agent's conflist and mncni installed as the agent installs it, and a
// CRI client creates pod sandboxes as kubelet does. containerd, not the test, execs the
// plugin. Checked with independent views: the sandbox's network namespace (`ip -j addr`),
// a ping from the node, the host veth and the IPAM reservation gone after removal. And the
// conflist a 1.1.0 agent wrote (before #29) is refused by this runtime: why the default is 1.0.0.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { stringify } from "yaml";
import { REF_CNI_DIR, requireBinary } from "../helpers/binary.ts";
import { cleanupNetns, createNetns, ipJson, run } from "../helpers/netns.ts";
import { tcpExchange } from "../plugin/fixture.ts";
import { nodeManifest } from "../agent/lab.ts";
import { buildPauseImage, Containerd, CriClient, type PodSandboxConfig } from "./containerd-node.ts";

setDefaultTimeout(120_000);
const ROOT = resolve(import.meta.dir, "../..");
let tmp: string;
let node: string;
let ctd: Containerd | undefined;
let cri: CriClient | undefined;
const bin = () => join(tmp, "bin");
const conf = () => join(tmp, "net.d");
const conf11 = () => join(tmp, "net.d-1.1.0");
const confServed = () => join(tmp, "net.d-served");
const serveSocket = () => join(tmp, "cni.sock");
let server: ReturnType<typeof Bun.spawn> | undefined;

/** `mncni agent --once` in the node namespace: writes the conflist into confDir. */
function agentOnce(confDir: string, extra: string[] = []): void {
  run([
    "ip", "netns", "exec", node, requireBinary(), "agent", "--once", "--node-name", "n1", "--source", `dir:${join(tmp, "manifests")}`,
    "--cni-conf-dir", confDir, "--cni-bin-dir", bin(), "--cluster-cidr", "10.244.0.0/16", "--ipam-data-dir", join(tmp, "ipam"),
    "--cni-log-file", join(tmp, "cni.log"), "--metrics-addr", "off", "--cni-socket", "off", "--state-file", join(tmp, "agent-run.json"),
    "--log-file", join(tmp, "agent.log"), ...extra,
  ]);
}

const pod = (name: string): PodSandboxConfig => ({
  metadata: { name, uid: `uid-${name}`, namespace: "default", attempt: 0 },
  hostname: name,
  log_directory: join(tmp, "logs", name),
  dns_config: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
  labels: { app: name },
});

/** The IPAM directory's reservation files (its flow marks, in .mncni-flows/, are not reservations). */
const reservations = () => readdirSync(join(tmp, "ipam"), { recursive: true }).map(String).filter((f) => !f.includes(".mncni-flows"));

/** The node's host veths of a container (the alias names it). */
const vethsOf = (id: string) => ipJson<{ ifname: string; ifalias?: string }[]>(node, ["link", "show", "type", "veth"]).filter((l) => l.ifalias?.includes(id));

beforeAll(async () => {
  requireBinary();
  if (!existsSync("/usr/bin/containerd")) throw new Error("containerd is not installed: make test installs it (apt-get install containerd)");
  tmp = mkdtempSync(`/tmp/mncni-ctd-${process.pid}-`);
  mkdirSync(join(tmp, "manifests"));
  writeFileSync(join(tmp, "manifests/n1.yaml"), stringify(nodeManifest("n1", "10.99.5.11", ["10.244.1.0/24"])));
  node = createNetns("mnc-ctd");
  // As the agent installs it: the native forwarder as mncni, the Bun executable beside it;
  // containerd's CRI also runs the reference loopback for the sandbox's lo.
  mkdirSync(bin());
  copyFileSync(join(ROOT, "dist/mncni-forward"), join(bin(), "mncni"));
  symlinkSync(requireBinary(), join(bin(), "mncni-core"));
  symlinkSync(requireBinary(), join(bin(), "mncni-ipam"));
  symlinkSync(join(REF_CNI_DIR, "loopback"), join(bin(), "loopback"));
  agentOnce(conf());
  agentOnce(conf11(), ["--cni-version", "1.1.0"]);
  // The conflist of an agent that serves the plugin's calls (the server: `mncni serve`, as in
  // the agent; nsenter, as containerd, so both see the sandboxes' netns mounts alike).
  agentOnce(confServed(), ["--cni-socket", serveSocket()]);
  server = Bun.spawn(["nsenter", `--net=/run/netns/${node}`, requireBinary(), "serve", "--socket", serveSocket()], { stdout: "ignore", stderr: "ignore" });
  const image = buildPauseImage(join(tmp, "image"));
  for (let i = 0; i < 500 && !existsSync(serveSocket()); i++) await Bun.sleep(20);
  ctd = new Containerd(join(tmp, "containerd"), node, bin(), conf(), [{ name: "mncni11", cniConfDir: conf11() }, { name: "served", cniConfDir: confServed() }]);
  await ctd.start();
  ctd.importImage(image);
  cri = new CriClient(ctd.socket);
});

afterAll(async () => {
  cri?.close();
  await ctd?.stop();
  server?.kill();
  await server?.exited;
  cleanupNetns();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("containerd 1.6 runs mncni from the agent's conflist", () => {
  test("RunPodSandbox: the sandbox gets an address of the node's pod CIDR, reachable from the node; Stop/Remove clean up", async () => {
    const v = await cri!.version();
    expect(v.runtime_name).toBe("containerd");
    expect(JSON.parse(readFileSync(join(conf(), "10-mncni.conflist"), "utf8")).cniVersion).toBe("1.0.0");

    const id = await cri!.runPodSandbox(pod("web"));
    const { status, netns } = await cri!.podSandboxStatus(id);
    expect(status.state).toBe("SANDBOX_READY");
    const ip = status.network!.ip;
    expect(ip).toMatch(/^10\.244\.1\.\d+$/);
    // The independent view: the sandbox's own namespace has the address on eth0.
    expect(netns).toBeDefined();
    const podNs = basename(netns!);
    const addrs = ipJson<{ ifname: string; addr_info: { local: string }[] }[]>(podNs, ["addr", "show", "eth0"]).flatMap((l) => l.addr_info.map((a) => a.local));
    expect(addrs).toContain(ip);
    expect(run(["ip", "netns", "exec", node, "ping", "-c", "1", "-W", "2", ip], { allowFail: true }).code).toBe(0);
    // containerd ran the plugin (the invocation log names the container).
    expect(readFileSync(join(tmp, "cni.log"), "utf8")).toContain(id);
    expect(vethsOf(id)).toHaveLength(1);
    expect(reservations().some((f) => f.endsWith(ip))).toBe(true);

    await cri!.stopPodSandbox(id);
    await cri!.removePodSandbox(id);
    expect(vethsOf(id)).toEqual([]);
    expect(reservations().some((f) => f.endsWith(ip))).toBe(false);
    expect(existsSync(netns!)).toBe(false);
  });

  test("served: containerd's plugin process hands the call to the server, which wires the sandbox", async () => {
    expect(JSON.parse(readFileSync(join(confServed(), "10-mncni.conflist"), "utf8")).plugins[0].agentSocket).toBe(serveSocket());
    const id = await cri!.runPodSandbox(pod("served"), "served");
    const { status, netns } = await cri!.podSandboxStatus(id);
    const ip = status.network!.ip;
    expect(ip).toMatch(/^10\.244\.1\.\d+$/);
    const addrs = ipJson<{ addr_info: { local: string }[] }[]>(basename(netns!), ["addr", "show", "eth0"]).flatMap((l) => l.addr_info.map((a) => a.local));
    expect(addrs).toContain(ip);
    expect(run(["ip", "netns", "exec", node, "ping", "-c", "1", "-W", "2", ip], { allowFail: true }).code).toBe(0);
    // The invocation log: the server ran the ADD (it records the plugin's queue time).
    const add = readFileSync(join(tmp, "cni.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.containerId === id && l.command === "ADD").pop();
    expect(add?.served).toBeDefined();
    await cri!.stopPodSandbox(id);
    await cri!.removePodSandbox(id);
    expect(vethsOf(id)).toEqual([]);
  });

  test("the sandbox's port mappings and bandwidth annotations reach mncni: a host port that carries traffic, shaped links", async () => {
    // A client on the node's LAN.
    const client = createNetns("mnc-cli");
    run(["ip", "-n", node, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", client]);
    run(["ip", "-n", node, "addr", "add", "192.168.77.1/24", "dev", "up0"]);
    run(["ip", "-n", client, "addr", "add", "192.168.77.2/24", "dev", "eth0"]);
    run(["ip", "-n", node, "link", "set", "up0", "up"]);
    run(["ip", "-n", client, "link", "set", "eth0", "up"]);
    const cfg = {
      ...pod("ports"),
      port_mappings: [{ protocol: "TCP" as const, container_port: 8080, host_port: 18090 }],
      // What kubelet copies from the Pod; containerd turns them into runtimeConfig.bandwidth
      // (rates in bit/s, and a burst of its own choosing).
      annotations: { "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M" },
    };
    const id = await cri!.runPodSandbox(cfg);
    try {
      const { status, netns } = await cri!.podSandboxStatus(id);
      const ip = status.network!.ip;
      expect(await tcpExchange({ server: basename(netns!), client, addr: "192.168.77.1", port: 8080, connectPort: 18090 })).toBe(true);
      // Shaping toward the pod on its host veth, from it on the veth's ifb.
      const veth = vethsOf(id)[0]!.ifname;
      const qdiscs = JSON.stringify(JSON.parse(run(["ip", "netns", "exec", node, "tc", "-j", "qdisc", "show", "dev", veth]).stdout));
      expect(qdiscs).toContain('"kind":"tbf"');
      expect(qdiscs).toContain('"rate":1250000'); // 10 Mbit/s in bytes
      expect(ip).toMatch(/^10\.244\.1\.\d+$/);
    } finally {
      await cri!.stopPodSandbox(id);
      await cri!.removePodSandbox(id);
    }
    expect(vethsOf(id)).toEqual([]);
    expect(await tcpExchange({ server: node, client, addr: "192.168.77.1", port: 18091, connectPort: 18090 })).toBe(false);
  });

  test("containerd restarted with a sandbox running: its network survives, and Stop/Remove after the restart clean up", async () => {
    const id = await cri!.runPodSandbox(pod("survivor"));
    const { status } = await cri!.podSandboxStatus(id);
    const ip = status.network!.ip;
    await ctd!.restart();
    cri!.close();
    cri = new CriClient(ctd!.socket);
    const after = await cri.podSandboxStatus(id);
    expect(after.status.state).toBe("SANDBOX_READY");
    expect(after.status.network!.ip).toBe(ip);
    expect(run(["ip", "netns", "exec", node, "ping", "-c", "1", "-W", "2", ip], { allowFail: true }).code).toBe(0);
    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
    expect(vethsOf(id)).toEqual([]);
    expect(reservations().some((f) => f.endsWith(ip))).toBe(false);
  });

  test("a sandbox whose DEL never came (its namespace removed behind containerd's back) is DELed by the agent after the grace period; a live one is kept", async () => {
    const kept = await cri!.runPodSandbox(pod("gc-kept"));
    const lost = await cri!.runPodSandbox(pod("gc-lost"));
    const keptIp = (await cri!.podSandboxStatus(kept)).status.network!.ip;
    const { status, netns } = await cri!.podSandboxStatus(lost);
    const ip = status.network!.ip;
    // Behind containerd's back: the sandbox's processes killed and its namespace unmounted, so
    // the namespace and the pod's veth pair go; containerd calls no DEL (kubelet never asks).
    const podNs = basename(netns!);
    for (const pid of run(["ip", "netns", "pids", podNs]).stdout.trim().split(/\s+/).filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    run(["ip", "netns", "delete", podNs]);
    for (let i = 0; i < 200 && vethsOf(lost).length; i++) await Bun.sleep(50);
    expect(vethsOf(lost)).toEqual([]);
    const dels = () => readFileSync(join(tmp, "cni.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.containerId === lost && l.command === "DEL");
    expect(dels()).toEqual([]);
    expect(reservations().some((f) => f.endsWith(ip))).toBe(true);
    // The agent (no Pod in its source has the address), with a 3 s grace and a pass every second.
    const agent = Bun.spawn([
      "ip", "netns", "exec", node, requireBinary(), "agent", "--node-name", "n1", "--source", `dir:${join(tmp, "manifests")}`,
      "--cni-conf-dir", conf(), "--cni-bin-dir", bin(), "--cluster-cidr", "10.244.0.0/16", "--ipam-data-dir", join(tmp, "ipam"),
      "--cni-log-file", join(tmp, "cni.log"), "--metrics-addr", "off", "--cni-socket", "off", "--state-file", join(tmp, "agent-run.json"),
      "--log-file", join(tmp, "agent-gc.log"), "--resync", "1", "--sandbox-gc-grace", "3",
    ], { stdout: "ignore", stderr: "ignore" });
    try {
      // Within the grace (counted from the agent's first look, after its start): kept.
      await Bun.sleep(1500);
      expect(reservations().some((f) => f.endsWith(ip))).toBe(true);
      for (let i = 0; i < 300 && reservations().some((f) => f.endsWith(ip)); i++) await Bun.sleep(100);
      expect(reservations().some((f) => f.endsWith(ip))).toBe(false);
      expect(dels()).toHaveLength(1);
      expect(readFileSync(join(tmp, "agent-gc.log"), "utf8")).toContain(`collect sandbox ${lost}`);
      // The live sandbox keeps its address, its veth and its traffic.
      expect(reservations().some((f) => f.endsWith(keptIp))).toBe(true);
      expect(vethsOf(kept)).toHaveLength(1);
      expect(run(["ip", "netns", "exec", node, "ping", "-c", "1", "-W", "2", keptIp], { allowFail: true }).code).toBe(0);
    } finally {
      agent.kill();
      await agent.exited;
    }
    for (const id of [kept, lost]) {
      await cri!.stopPodSandbox(id);
      await cri!.removePodSandbox(id);
    }
    expect(reservations().some((f) => f.endsWith(keptIp))).toBe(false);
  });

  test("a cniVersion 1.1.0 conflist (what the agent wrote before #29) fails every sandbox", async () => {
    expect(JSON.parse(readFileSync(join(conf11(), "10-mncni.conflist"), "utf8")).cniVersion).toBe("1.1.0");
    const err = await cri!.runPodSandbox(pod("old"), "mncni11").then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain('unsupported CNI result version "1.1.0"');
    // The plugin had run: containerd's teardown took everything back.
    expect(ipJson<{ ifalias?: string }[]>(node, ["link", "show", "type", "veth"]).filter((l) => l.ifalias?.startsWith("mncni/"))).toEqual([]);
    expect(reservations().filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
  });

  test("the server killed while containerd creates sandboxes: each sandbox either comes up or fails leaving nothing, and kubelet's retry (the plugin alone now) succeeds", async () => {
    const log = join(tmp, "cni.log");
    const served = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.command === "ADD" && l.served).length : 0);
    const before = served();
    const names = ["k0", "k1", "k2", "k3", "k4", "k5"];
    const runs = names.map((n) => cri!.runPodSandbox(pod(n), "served").then((id) => ({ n, id }), (e: Error) => ({ n, err: e.message })));
    // Once the server has answered one of them.
    for (let i = 0; i < 500 && served() === before; i++) await Bun.sleep(10);
    server!.kill("SIGKILL");
    await server!.exited;
    const first = await Promise.all(runs);
    // A call the server had taken when it died is answered code 11 (containerd fails the sandbox, kubelet retries).
    for (const r of first) if ("err" in r) expect(r.err).toContain("try again");
    const ids: string[] = [];
    for (const r of first) {
      if ("id" in r) ids.push(r.id);
      else ids.push(await cri!.runPodSandbox({ ...pod(r.n), metadata: { ...pod(r.n).metadata, attempt: 1 } }, "served"));
    }
    const ips = new Set<string>();
    for (const id of ids) {
      const { status } = await cri!.podSandboxStatus(id);
      expect(status.state).toBe("SANDBOX_READY");
      ips.add(status.network!.ip);
      expect(run(["ip", "netns", "exec", node, "ping", "-c", "1", "-W", "2", status.network!.ip], { allowFail: true }).code).toBe(0);
    }
    expect(ips.size).toBe(names.length);
    for (const id of ids) {
      await cri!.stopPodSandbox(id);
      await cri!.removePodSandbox(id);
    }
    // Nothing of a failed attempt or of the sandboxes is left.
    expect(ipJson<{ ifalias?: string }[]>(node, ["link", "show", "type", "veth"]).filter((l) => l.ifalias?.startsWith("mncni/"))).toEqual([]);
    expect(reservations().filter((f) => /\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
  });
});
