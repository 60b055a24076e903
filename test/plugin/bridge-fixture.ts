// Shared setup of the bridge-mode plugin tests: a throwaway "node" namespace (prefix "mnb")
// with its own temp dir (IPAM dataDir, invocation log, a CNI_PATH dir holding mncni-ipam),
// pod namespaces, the compiled plugin driven through the CNI protocol as a runtime would,
// and independent views of the result (iproute2, nft, the IPAM files, real ping).
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { requireBinary } from "../helpers/binary.ts";
import { cni, type CniCall, type CniReply } from "../helpers/cni.ts";
import { createNetns, deleteNetns, inNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";

export const PREFIX = "mnb";
export const REF_CNI_DIR = "/usr/lib/cni";

export const V4_RANGES = [[{ subnet: "10.244.1.0/24" }]];
export const V6_RANGES = [[{ subnet: "fd00:10:244:1::/64" }]];
export const DUAL_RANGES = [...V4_RANGES, ...V6_RANGES];
export const V4_DEFAULT = { dst: "0.0.0.0/0" };
export const V6_DEFAULT = { dst: "::/0" };

export interface ConfOpts {
  cniVersion?: string;
  name?: string;
  /** The plugin type: "mncni" unless testing the reference bridge. */
  type?: string;
  ranges?: object[][];
  routes?: object[];
  /** Replaces the whole ipam section (dataDir is added unless given). */
  ipam?: Record<string, unknown>;
  /** Extra top-level fields (mode, bridge, dns, unknown ones...). */
  extra?: Record<string, unknown>;
}

export interface PodCall {
  pod?: string;
  id: string;
  ifname?: string;
  env?: Record<string, string>;
  args?: string;
}

const liveNodes = new Set<TestNode>();

/** A node namespace and everything a test made in it; destroy() removes it all. */
export class TestNode {
  readonly ns: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** CNI_PATH: a dir with mncni-ipam (a link to the binary under test), then the reference plugins. */
  readonly cniPath: string;
  readonly bin: string;
  private readonly pods = new Set<string>();

  /** bin: the plugin executable to run (default: the compiled mncni under test). */
  constructor(o: { bin?: string } = {}) {
    this.bin = resolve(o.bin ?? requireBinary());
    this.dir = mkdtempSync(`/tmp/${PREFIX}-test-${process.pid}-`);
    this.dataDir = `${this.dir}/ipam`;
    this.logFile = `${this.dir}/cni.log`;
    symlinkSync(this.bin, `${this.dir}/mncni-ipam`);
    symlinkSync(this.bin, `${this.dir}/mncni`);
    this.cniPath = `${this.dir}:${REF_CNI_DIR}`;
    this.ns = createNetns(PREFIX);
    liveNodes.add(this);
  }

  /** A fresh pod namespace; returns its name (its path is netnsPath(name)). */
  pod(): string {
    const name = createNetns(PREFIX);
    this.pods.add(name);
    return name;
  }

  deletePod(name: string): void {
    deleteNetns(name);
    this.pods.delete(name);
  }

  conf(o: ConfOpts = {}): Record<string, any> {
    const ipam = o.ipam
      ? { dataDir: this.dataDir, ...o.ipam }
      : { type: "mncni-ipam", ranges: o.ranges ?? DUAL_RANGES, routes: o.routes ?? [V4_DEFAULT, V6_DEFAULT], dataDir: this.dataDir };
    return {
      cniVersion: o.cniVersion ?? "1.1.0",
      name: o.name ?? "mnbnet",
      type: o.type ?? "mncni",
      // Also read by mncni-ipam under the reference bridge (which ignores the field).
      logFile: this.logFile,
      ipam,
      ...o.extra,
    };
  }

  /** Runs a CNI command of the plugin (conf.type) inside the node namespace. */
  call(command: CniCall["command"], conf: object, p: Partial<PodCall> = {}): CniReply {
    return cni(this.callSpec(command, conf, p));
  }

  /** The same call, started asynchronously: the pid is the plugin's (ip netns exec execs it). */
  spawn(command: CniCall["command"], conf: object, p: Partial<PodCall> = {}) {
    const c = this.callSpec(command, conf, p);
    const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CNI_COMMAND: command, ...c.env };
    if (c.containerId !== undefined) env.CNI_CONTAINERID = c.containerId;
    if (c.netns !== undefined) env.CNI_NETNS = c.netns;
    if (c.ifname !== undefined) env.CNI_IFNAME = c.ifname;
    if (c.path !== undefined) env.CNI_PATH = c.path;
    const proc = Bun.spawn(["ip", "netns", "exec", this.ns, c.bin!], {
      env,
      stdin: Buffer.from(JSON.stringify(conf)),
      stdout: "pipe",
      stderr: "pipe",
    });
    const done = (async () => {
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      return { code, stdout, stderr, json, signal: proc.signalCode } as CniReply & { signal: string | null };
    })();
    return { proc, done };
  }

  private callSpec(command: CniCall["command"], conf: Record<string, any> | object, p: Partial<PodCall>): CniCall {
    const type = (conf as { type?: string }).type ?? "mncni";
    const bin = type === "mncni" ? this.bin : `${REF_CNI_DIR}/${type}`;
    const perPod = command === "ADD" || command === "DEL" || command === "CHECK";
    return {
      command,
      conf,
      bin,
      nodeNs: this.ns,
      path: this.cniPath,
      containerId: perPod ? p.id : undefined,
      netns: perPod && p.pod !== undefined ? (p.pod === "" ? "" : netnsPath(p.pod)) : undefined,
      ifname: perPod ? (p.ifname ?? "eth0") : undefined,
      args: p.args,
      env: p.env,
    };
  }

  /** ADD that must succeed; returns the parsed Result. */
  add(conf: object, p: PodCall): any {
    const r = this.call("ADD", conf, p);
    if (r.code !== 0) throw new Error(`ADD ${p.id} failed (${r.code}): ${r.stdout}${r.stderr}`);
    return r.json;
  }

  del(conf: object, p: PodCall): CniReply {
    return this.call("DEL", conf, p);
  }

  /** CHECK with prevResult set, as a runtime does. */
  check(conf: object, prevResult: object, p: PodCall): CniReply {
    return this.call("CHECK", { ...conf, prevResult }, p);
  }

  destroy(): void {
    for (const p of this.pods) deleteNetns(p);
    this.pods.clear();
    // Deleting the node namespace removes the bridge, veths and nft tables inside it.
    deleteNetns(this.ns);
    rmSync(this.dir, { recursive: true, force: true });
    liveNodes.delete(this);
  }
}

/** For afterAll/afterEach: removes every node (and its pods) still alive. */
export function destroyAllNodes(): void {
  for (const n of [...liveNodes]) n.destroy();
}

// ---- independent views -------------------------------------------------------------

export interface IpLink {
  ifindex: number;
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_slave_data?: { hairpin?: boolean } };
}

export function links(ns: string): IpLink[] {
  return ipJson<IpLink[]>(ns, ["-d", "link", "show"]);
}

export function link(ns: string, name: string): IpLink | undefined {
  return links(ns).find((l) => l.ifname === name);
}

/** Host veths made by mncni in the node namespace, found by their alias (not by the plugin's naming code). */
export function hostVeths(node: string): IpLink[] {
  return links(node).filter((l) => l.ifalias?.startsWith("mncni/"));
}

export function hostVethOf(node: string, network: string, id: string, ifname = "eth0"): IpLink | undefined {
  return hostVeths(node).find((l) => l.ifalias === `mncni/${network}/${id}/${ifname}`);
}

/** Global addresses (CIDR) of an interface. */
export function addrs(ns: string, ifname: string): string[] {
  const out = ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(ns, ["addr", "show", "dev", ifname]);
  return (out[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

export function routes(ns: string, family: 4 | 6): IpRoute[] {
  return ipJson<IpRoute[]>(ns, [`-${family}`, "route", "show"]);
}

export function defaultRoute(ns: string, family: 4 | 6): IpRoute | undefined {
  return routes(ns, family).find((r) => r.dst === "default");
}

export function sysctl(ns: string, key: string): string {
  return inNetns(ns, ["cat", `/proc/sys/${key.replaceAll(".", "/")}`]).stdout.trim();
}

/** dataDir/<network>/<ip> files: address -> "containerId\r\nifname". */
export function reservations(dataDir: string, network = "mnbnet"): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(`${dataDir}/${network}`);
  } catch {
    return out;
  }
  for (const n of names) if (isIP(n)) out.set(n, readFileSync(`${dataDir}/${network}/${n}`, "utf8"));
  return out;
}

/** Addresses reserved for one attachment. */
export function reservedFor(dataDir: string, id: string, ifname = "eth0", network = "mnbnet"): string[] {
  return [...reservations(dataDir, network)].filter(([, c]) => c.trim() === `${id}\r\n${ifname}`).map(([ip]) => ip);
}

/**
 * Host veths the bridge anti-spoofing table holds state for (chains, set or map elements:
 * whatever its layout, it names the veth). Empty when the table is absent.
 */
export function antiSpoofVeths(node: string): string[] {
  const r = run(["ip", "netns", "exec", node, "nft", "list", "table", "bridge", "mncni-antispoof"], { allowFail: true });
  if (r.code !== 0) return [];
  return [...new Set(r.stdout.match(/mnc[0-9a-f]{12}/g) ?? [])].sort();
}

// The kernel's ARP table is one table for every namespace on the machine (gc_thresh3 counts
// them all): when other tests hold ~1000 entries, a new one fails with ENOBUFS until the
// table is collected. A few spaced attempts ride that out; a broken path still fails all.
const PING_ATTEMPTS = 8;
const pingArgv = (ns: string, addr: string) => ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr];

export function ping(ns: string, addr: string): boolean {
  for (let i = 0; i < PING_ATTEMPTS; i++) {
    if (run(pingArgv(ns, addr), { allowFail: true }).code === 0) return true;
    Bun.sleepSync(200);
  }
  return false;
}

export async function pingAsync(ns: string, addr: string): Promise<boolean> {
  for (let i = 0; i < PING_ATTEMPTS; i++) {
    if ((await Bun.spawn(pingArgv(ns, addr), { stdout: "ignore", stderr: "ignore" }).exited) === 0) return true;
    await Bun.sleep(200);
  }
  return false;
}

export const plain = (cidr: string) => cidr.split("/")[0]!;
