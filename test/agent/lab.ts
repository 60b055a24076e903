// A small cluster for agent integration tests: a switch namespace with a bridge, node
// namespaces on it (10.99.0.1N/24), a router (10.99.0.254) to an "external" host
// (203.0.113.10), and an empty namespace per node for its pod. The agents are the compiled
// `dist/mncni agent`, which installs the real plugin (the forwarder as mncni, the executable
// as mncni-core and mncni-ipam); pods are added through that plugin by a runtime (libcni's
// steps, src/lab/executor.ts), so the kernel state is the plugin's own.
import { spawn, type Subprocess } from "bun";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { CniExecutor, type RuntimeAttachment } from "../../src/lab/executor.ts";
import { requireBinary } from "../helpers/binary.ts";
import { createNetns, inNetns, netnsPath, run, cleanupNetns } from "../helpers/netns.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const BUN = join(ROOT, "node_modules/.bin/bun");
export const EXT_IP = "203.0.113.10";

export interface TestNode {
  name: string;
  ns: string;
  ip: string;
  /** Dual-stack clusters: the IPv6 InternalIP and pod CIDR. */
  ip6?: string;
  podCIDR6?: string;
  podCIDR: string;
  /** Set by addPod. */
  podIP: string;
  podNs: string;
  dir: string;
  agent?: Subprocess;
}

export interface TestCluster {
  /** The first segment's switch. */
  sw: string;
  switches: string[];
  router: string;
  ext: string;
  nodes: TestNode[];
  manifests: string;
  tmp: string;
}

const sh = (ns: string, cmd: string) => inNetns(ns, ["sh", "-c", cmd]);

export function nodeManifest(name: string, ip: string, cidrs: string[], ip6?: string): object {
  const addresses = [ip, ...(ip6 ? [ip6] : [])].map((address) => ({ type: "InternalIP", address }));
  return { apiVersion: "v1", kind: "Node", metadata: { name }, spec: { podCIDRs: cidrs }, status: { addresses } };
}

export function writeNode(c: TestCluster, name: string, ip: string, cidrs: string[], ip6?: string): void {
  const tmp = join(c.manifests, `.${name}.tmp`);
  writeFileSync(tmp, stringify(nodeManifest(name, ip, cidrs, ip6)));
  run(["mv", tmp, join(c.manifests, `node-${name}.yaml`)]);
}

export function removeNode(c: TestCluster, name: string): void {
  rmSync(join(c.manifests, `node-${name}.yaml`), { force: true });
}

function link(a: string, aIf: string, b: string, bIf: string): void {
  run(["ip", "-n", a, "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b]);
  run(["ip", "-n", a, "link", "set", aIf, "up"]);
  run(["ip", "-n", b, "link", "set", bIf, "up"]);
}

export interface ClusterOpts {
  /** Underlay subnets, each its own switch (10.99.S.0/24, fd99:S+1::/64), joined by the router. Default 1. */
  segments?: number;
  /** Nodes get an IPv6 InternalIP and pod CIDR too. */
  dualStack?: boolean;
}

/** The segment of node i (1-based) of count: consecutive nodes share one. */
export const segmentOf = (i: number, count: number, segments: number): number => Math.floor(((i - 1) * segments) / count);

export function buildCluster(count: number, o: ClusterOpts = {}): TestCluster {
  const segments = o.segments ?? 1;
  const tmp = mkdtempSync(`/tmp/mna-agent-${process.pid}-`);
  const manifests = join(tmp, "manifests");
  mkdirSync(manifests);
  const switches: string[] = [];
  const router = createNetns("mna-rt");
  const attach = (sw: string, ns: string, port: string, ip: string, ip6?: string) => {
    link(sw, port, ns, "eth0");
    run(["ip", "-n", sw, "link", "set", port, "master", "br0"]);
    run(["ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
    if (ip6) run(["ip", "-n", ns, "addr", "add", `${ip6}/64`, "dev", "eth0", "nodad"]);
  };
  for (let k = 0; k < segments; k++) {
    const sw = createNetns("mna-sw");
    run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", sw, "link", "set", "br0", "up"]);
    switches.push(sw);
    // The router's port on the first segment keeps the name it always had.
    const port = k === 0 ? "p-rt" : `p-rt${k}`;
    link(sw, port, router, `eth${k}`);
    run(["ip", "-n", sw, "link", "set", port, "master", "br0"]);
    run(["ip", "-n", router, "addr", "add", `10.99.${k}.254/24`, "dev", `eth${k}`]);
    if (o.dualStack) run(["ip", "-n", router, "addr", "add", `fd99:${k + 1}::fe/64`, "dev", `eth${k}`, "nodad"]);
  }
  const ext = createNetns("mna-ext");
  link(router, "ext0", ext, "eth0");
  run(["ip", "-n", router, "addr", "add", "203.0.113.1/24", "dev", "ext0"]);
  run(["ip", "-n", ext, "addr", "add", `${EXT_IP}/24`, "dev", "eth0"]);
  run(["ip", "-n", ext, "route", "add", "10.99.0.0/16", "via", "203.0.113.1"]);
  sh(router, "sysctl -qw net.ipv4.ip_forward=1");
  if (o.dualStack) sh(router, "sysctl -qw net.ipv6.conf.all.forwarding=1");
  const nodes: TestNode[] = [];
  for (let i = 1; i <= count; i++) {
    const k = segmentOf(i, count, segments);
    const ns = createNetns(`mna-n${i}`);
    const ip = `10.99.${k}.${10 + i}`;
    const ip6 = o.dualStack ? `fd99:${k + 1}::${10 + i}` : undefined;
    attach(switches[k]!, ns, `p-n${i}`, ip, ip6);
    run(["ip", "-n", ns, "route", "add", "default", "via", `10.99.${k}.254`]);
    if (ip6) run(["ip", "-n", ns, "-6", "route", "add", "default", "via", `fd99:${k + 1}::fe`]);
    const podNs = createNetns(`mna-p${i}`);
    const dir = join(tmp, `n${i}`);
    mkdirSync(dir);
    nodes.push({ name: `n${i}`, ns, ip, ...(ip6 ? { ip6, podCIDR6: `fd00:244:0:${i}::/64` } : {}), podCIDR: `10.244.${i}.0/24`, podIP: "", podNs, dir });
  }
  const c = { sw: switches[0]!, switches, router, ext, nodes, manifests, tmp };
  for (const n of nodes) writeNode(c, n.name, n.ip, [n.podCIDR, ...(n.podCIDR6 ? [n.podCIDR6] : [])], n.ip6);
  return c;
}

/**
 * The compiled agent inside the node (`o.bin`, default the build under test): it installs
 * itself (and the forwarder beside it). Source: the manifests directory unless `o.source`.
 */
export function agentArgs(c: TestCluster, n: TestNode, extra: string[] = [], o: { bin?: string; source?: string } = {}): string[] {
  return [
    "ip", "netns", "exec", n.ns, o.bin ?? requireBinary(), "agent",
    "--node-name", n.name, "--source", o.source ?? `dir:${c.manifests}`,
    "--cni-conf-dir", join(n.dir, "conf"), "--cni-bin-dir", join(n.dir, "bin"),
    "--cluster-cidr", "10.244.0.0/16", "--ipam-data-dir", join(n.dir, "ipam"), "--cni-log-file", join(n.dir, "cni.log"),
    "--resync", "1", "--log-file", join(n.dir, "agent.log"), "--cni-socket", join(n.dir, "run/cni.sock"), ...extra,
  ];
}

export function startAgent(c: TestCluster, n: TestNode, extra: string[] = []): void {
  n.agent = spawn(agentArgs(c, n, extra), { stdout: "ignore", stderr: "pipe" });
}

/** The runtime of a node: the conflist and binaries its agent installed. */
export function runtimeOf(n: TestNode): CniExecutor {
  return new CniExecutor({ confDir: join(n.dir, "conf"), binDirs: [join(n.dir, "bin")], cacheDir: join(n.dir, "results"), execPrefix: ["ip", "netns", "exec", n.ns] });
}

export const podAttachment = (n: TestNode): RuntimeAttachment => ({ containerId: `pod-${n.name}`, netns: netnsPath(n.podNs), ifname: "eth0" });

/** ADD of the node's pod through the installed plugin; sets n.podIP from the result. */
export async function addPod(n: TestNode): Promise<void> {
  const result = (await runtimeOf(n).add(podAttachment(n))) as { ips: { address: string }[] };
  n.podIP = result.ips[0]!.address.split("/")[0]!;
}

export async function stopAgent(n: TestNode): Promise<void> {
  if (!n.agent) return;
  n.agent.kill("SIGTERM");
  await n.agent.exited;
  n.agent = undefined;
}

export async function waitFor(what: string, fn: () => boolean, timeoutMs = 8000, everyMs = 50): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (fn()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

export async function destroyCluster(c: TestCluster | undefined): Promise<void> {
  if (c) {
    for (const n of c.nodes) {
      // The agent runs under `ip netns exec`, which execs: the PID is the agent's.
      if (n.agent) {
        n.agent.kill("SIGKILL");
        await n.agent.exited;
      }
    }
    rmSync(c.tmp, { recursive: true, force: true });
  }
  cleanupNetns();
}
