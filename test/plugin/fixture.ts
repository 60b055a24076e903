// Shared setup of the plugin tests, both modes: a throwaway "node" namespace (prefix "mnp")
// with its own temp dir (IPAM dataDir, invocation log, a CNI_PATH dir holding mncni and
// mncni-ipam), optionally an uplink veth to a "client" namespace (so the node has addresses
// and something outside the pods can send to it), pod namespaces, the compiled plugin
// driven through the CNI protocol as a runtime would, and independent views of the result
// (iproute2, nft, the IPAM files, /proc/net/snmp counters, real traffic with ping and nc).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { expect } from "bun:test";
import { REF_CNI_DIR, requireBinary } from "../helpers/binary.ts";
import { cni, type CniCall, type CniReply } from "../helpers/cni.ts";
import { createNetns, deleteNetns, inNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";

export { REF_CNI_DIR };
export const PREFIX = "mnp";
/** The network name of conf() unless another is given. */
export const NET = "mnbnet";
export type Fam = 4 | 6;
export type { Mode } from "../../src/plugin/netconf.ts";
import type { Mode } from "../../src/plugin/netconf.ts";

export const V4_RANGES = [[{ subnet: "10.244.1.0/24" }]];
export const V6_RANGES = [[{ subnet: "fd00:10:244:1::/64" }]];
export const DUAL_RANGES = [...V4_RANGES, ...V6_RANGES];
export const V4_DEFAULT = { dst: "0.0.0.0/0" };
export const V6_DEFAULT = { dst: "::/0" };

/** IPAM ranges/routes per stack. */
export const STACKS = {
  v4: { families: [4] as Fam[], ranges: V4_RANGES, routes: [V4_DEFAULT] },
  v6: { families: [6] as Fam[], ranges: V6_RANGES, routes: [V6_DEFAULT] },
  dual: { families: [4, 6] as Fam[], ranges: DUAL_RANGES, routes: [V4_DEFAULT, V6_DEFAULT] },
} as const;
export type Stack = keyof typeof STACKS;

/** Addresses of the node's uplink ("up0") to the client namespace ("eth0"). */
export const UPLINK = { node: { 4: "192.168.77.1", 6: "fd77::1" }, client: { 4: "192.168.77.2", 6: "fd77::2" } } as const;

export interface ConfOpts {
  cniVersion?: string;
  name?: string;
  /** The plugin type: "mncni" unless testing the reference bridge. */
  type?: string;
  /** Written as the config's `mode` when given (the plugin's default is bridge). */
  mode?: Mode;
  /** Ranges and routes of one stack (default dual); `ranges`/`routes` override them. */
  stack?: Stack;
  ranges?: object[][];
  routes?: object[];
  /** Replaces the whole ipam section (dataDir is added unless given). */
  ipam?: Record<string, unknown>;
  /** Extra top-level fields (bridge, dns, unknown ones...), applied last. */
  extra?: Record<string, unknown>;
}

export interface PodCall {
  pod?: string;
  id: string;
  ifname?: string;
  env?: Record<string, string>;
  args?: string;
}
export type PodRef = PodCall & { pod: string };

const liveNodes = new Set<TestNode>();

/** A node namespace and everything a test made in it; destroy() removes it all. */
export class TestNode {
  readonly ns: string;
  private readonly uplinkNs?: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** A dir holding mncni and mncni-ipam (links to the binary under test); CNI_PATH starts with it. */
  readonly binDir: string;
  readonly cniPath: string;
  readonly bin: string;
  private readonly pods = new Set<string>();

  /** bin: the plugin executable to run (default: the compiled mncni under test). */
  constructor(o: { bin?: string; uplink?: boolean } = {}) {
    this.bin = resolve(o.bin ?? requireBinary());
    this.dir = mkdtempSync(`/tmp/${PREFIX}-test-${process.pid}-`);
    this.dataDir = `${this.dir}/ipam`;
    this.logFile = `${this.dir}/cni.log`;
    this.binDir = `${this.dir}/bin`;
    mkdirSync(this.binDir);
    symlinkSync(this.bin, `${this.binDir}/mncni-ipam`);
    symlinkSync(this.bin, `${this.binDir}/mncni`);
    this.cniPath = `${this.binDir}:${REF_CNI_DIR}`;
    liveNodes.add(this);
    this.ns = createNetns(PREFIX);
    if (o.uplink) this.uplinkNs = this.wireUplink();
  }

  /** With `uplink`: a namespace outside the node, wired to it by "up0" (node) / "eth0" (client). */
  get client(): string {
    if (!this.uplinkNs) throw new Error("this test node has no uplink: create it with { uplink: true }");
    return this.uplinkNs;
  }

  private wireUplink(): string {
    const client = createNetns(PREFIX);
    run(["ip", "-n", this.ns, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", client]);
    for (const [ns, dev, side] of [[this.ns, "up0", "node"], [client, "eth0", "client"]] as const) {
      run(["ip", "-n", ns, "addr", "add", `${UPLINK[side][4]}/24`, "dev", dev]);
      run(["ip", "-n", ns, "addr", "add", `${UPLINK[side][6]}/64`, "dev", dev, "nodad"]);
      run(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    // The client reaches the pod ranges through the node, as a machine on the node's LAN would.
    run(["ip", "-n", client, "route", "add", "10.244.0.0/16", "via", UPLINK.node[4]]);
    run(["ip", "-n", client, "-6", "route", "add", "fd00:10:244::/48", "via", UPLINK.node[6]]);
    return client;
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
    const s = STACKS[o.stack ?? "dual"];
    const ipam = o.ipam
      ? { dataDir: this.dataDir, ...o.ipam }
      : { type: "mncni-ipam", ranges: o.ranges ?? s.ranges, routes: o.routes ?? s.routes, dataDir: this.dataDir };
    return {
      cniVersion: o.cniVersion ?? "1.1.0",
      name: o.name ?? NET,
      type: o.type ?? "mncni",
      ...(o.mode ? { mode: o.mode } : {}),
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
    if (c.args !== undefined) env.CNI_ARGS = c.args;
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

  /** A fresh pod namespace with an attachment; returns the pod, its id and the Result. */
  addPod(conf: object, id: string): PodRef & { result: any } {
    const pod = this.pod();
    return { pod, id, result: this.add(conf, { pod, id }) };
  }

  /** The reply of a spawned call that must have succeeded. */
  expectOk(r: CniReply): CniReply {
    expect({ code: r.code, out: r.code ? r.stdout + r.stderr : "" }).toEqual({ code: 0, out: "" });
    return r;
  }

  del(conf: object, p: PodCall): CniReply {
    return this.call("DEL", conf, p);
  }

  /** CHECK with prevResult set, as a runtime does. */
  check(conf: object, prevResult: object, p: PodCall): CniReply {
    return this.call("CHECK", { ...conf, prevResult }, p);
  }

  gc(conf: object, valid: PodCall[]): CniReply {
    return this.call("GC", { ...conf, "cni.dev/valid-attachments": valid.map((v) => ({ containerID: v.id, ifname: v.ifname ?? "eth0" })) });
  }

  /** Runs fns with at most `limit` in flight (the machine has 2 cores, and ping waits). */
  async limited<T>(limit: number, fns: (() => Promise<T>)[]): Promise<T[]> {
    return limited(limit, fns);
  }

  destroy(): void {
    for (const p of this.pods) deleteNetns(p);
    this.pods.clear();
    // Deleting the node namespace removes the bridge, veths, routes and nft tables inside it.
    if (this.uplinkNs) deleteNetns(this.uplinkNs);
    deleteNetns(this.ns);
    rmSync(this.dir, { recursive: true, force: true });
    liveNodes.delete(this);
  }
}

/** For afterAll/afterEach: removes every node (and its pods) still alive. */
export function destroyAllNodes(): void {
  for (const n of [...liveNodes]) n.destroy();
}

/** Runs fns with at most `limit` in flight. */
export async function limited<T>(limit: number, fns: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(fns.length);
  let next = 0;
  const worker = async () => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker));
  return out;
}

// ---- independent views -------------------------------------------------------------

export const plain = (cidr: string) => cidr.split("/")[0]!;
export const familyOf = (addr: string): Fam => (addr.includes(":") ? 6 : 4);

export interface IpLink {
  ifindex: number;
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  master?: string;
  ifalias?: string;
  promiscuity?: number;
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

/** The host veth of an attachment, found by the alias mncni writes. */
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
  scope?: string;
  protocol?: string;
  flags?: string[];
}

export function routes(ns: string, family: Fam): IpRoute[] {
  return ipJson<IpRoute[]>(ns, [`-${family}`, "route", "show"]);
}

export function defaultRoute(ns: string, family: Fam): IpRoute | undefined {
  return routes(ns, family).find((r) => r.dst === "default");
}

/** Routes tagged with mncni's route protocol (77) in a namespace, both families. */
export function mncniRoutes(ns: string): IpRoute[] {
  return ([4, 6] as const).flatMap((f) => ipJson<IpRoute[]>(ns, [`-${f}`, "route", "show", "proto", "77"]));
}

export interface IpNeigh {
  dst: string;
  dev: string;
  lladdr?: string;
  state?: string[];
}

export function neighbours(ns: string, f: Fam): IpNeigh[] {
  return ipJson<IpNeigh[]>(ns, [`-${f}`, "neigh", "show"]);
}

export function sysctl(ns: string, key: string): string {
  return inNetns(ns, ["cat", `/proc/sys/${key.replaceAll(".", "/")}`]).stdout.trim();
}

/** dataDir/<network>/<ip> files: address -> "containerId\r\nifname". */
export function reservations(dataDir: string, network = NET): Map<string, string> {
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

/** The reserved addresses of a network. */
export function reservedIps(dataDir: string, network = NET): string[] {
  return [...reservations(dataDir, network).keys()];
}

/** Addresses reserved for one attachment. */
export function reservedFor(dataDir: string, id: string, ifname = "eth0", network = NET): string[] {
  return [...reservations(dataDir, network)].filter(([, c]) => c.trim() === `${id}\r\n${ifname}`).map(([ip]) => ip);
}

/**
 * Host veths an anti-spoofing table holds state for (chains, set or map elements: whatever
 * its layout, it names the veth). Empty when the table is absent.
 */
export function antiSpoofVeths(node: string, family: "bridge" | "inet" = "bridge"): string[] {
  const r = run(["ip", "netns", "exec", node, "nft", "list", "table", family, "mncni-antispoof"], { allowFail: true });
  if (r.code !== 0) return [];
  return [...new Set(r.stdout.match(/mnc[0-9a-f]{12}/g) ?? [])].sort();
}

// The kernel's ARP table is one table for every namespace on the machine (gc_thresh3 counts
// them all): when other tests hold ~1000 entries, a new one fails with ENOBUFS until the
// table is collected. A few spaced attempts ride that out; a broken path still fails all.
const PING_ATTEMPTS = 8;
const pingArgv = (ns: string, addr: string) => ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr];

/** A ping that must get through, with a few spaced attempts (see above). */
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

// ---- nftables ---------------------------------------------------------------------------

export interface AntiSpoofState {
  /** Elements per set, each as its key parts (a concatenation "veth . addr" gives [veth, addr]). */
  sets: Map<string, string[][]>;
  /** Rules in the table's base chain(s). */
  rules: number;
}

/** The anti-spoofing table as `nft -j list` shows it; undefined when the table does not exist. */
export function antiSpoofTable(node: string, family: "bridge" | "inet"): AntiSpoofState | undefined {
  const r = run(["ip", "netns", "exec", node, "nft", "-j", "list", "table", family, "mncni-antispoof"], { allowFail: true });
  if (r.code !== 0) return undefined;
  const items = (JSON.parse(r.stdout).nftables ?? []) as any[];
  const sets = new Map<string, string[][]>();
  for (const i of items) {
    if (!i.set) continue;
    const elems = ((i.set.elem ?? []) as any[]).map((e) => (Array.isArray(e?.concat) ? e.concat.map(String) : [String(e?.elem?.val ?? e)]));
    sets.set(i.set.name, elems);
  }
  return { sets, rules: items.filter((i) => i.rule).length };
}

/** What the table holds for one host veth: "set: key . key" strings, sorted. */
export function antiSpoofEntries(state: AntiSpoofState | undefined, hostVeth: string): string[] {
  if (!state) return [];
  const out: string[] = [];
  for (const [name, elems] of state.sets) for (const e of elems) if (e[0] === hostVeth) out.push(`${name}: ${e.join(" . ")}`);
  return out.sort();
}

// ---- traffic ------------------------------------------------------------------------------

/** `wait`: seconds to wait for the last reply (short when no reply is expected). */
export function pingOnce(ns: string, dst: string, opts: { from?: string; count?: number; wait?: number } = {}): boolean {
  const argv = ["ip", "netns", "exec", ns, "ping", "-c", String(opts.count ?? 1), "-W", String(opts.wait ?? 1), "-i", "0.1"];
  if (opts.from) argv.push("-I", opts.from);
  return run([...argv, dst], { allowFail: true }).code === 0;
}

/**
 * A ping that must get through, retried for a few seconds: on this shared machine the kernel's
 * neighbour table (global across namespaces, gc_thresh3) is sometimes full, and a first ARP
 * or ND then fails for a moment (/proc/net/stat/arp_cache table_fulls) whatever mncni did.
 */
export async function reaches(ns: string, dst: string, opts: { from?: string; withinMs?: number } = {}): Promise<boolean> {
  const until = Date.now() + (opts.withinMs ?? 6000);
  do {
    if (pingOnce(ns, dst, { from: opts.from })) return true;
    await Bun.sleep(100);
  } while (Date.now() < until);
  return false;
}

/** ICMP echo requests a namespace has received so far (what arrived, whatever happened to the reply). */
export function echoRequestsIn(ns: string, f: Fam): number {
  const text = inNetns(ns, ["cat", f === 4 ? "/proc/net/snmp" : "/proc/net/snmp6"]).stdout;
  if (f === 6) return Number(/^Icmp6InEchos\s+(\d+)/m.exec(text)?.[1] ?? NaN);
  const lines = text.split("\n").filter((l) => l.startsWith("Icmp:"));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf("InEchos")]);
}

/**
 * A TCP exchange with busybox nc: a server in `server` on `port`, a client in `client`
 * connecting to `addr` (on `connectPort`, e.g. a published host port, default `port`).
 * True when both sides received the other's line.
 */
export async function tcpExchange(o: { server: string; client: string; addr: string; port: number; connectPort?: number }): Promise<boolean> {
  const srv = Bun.spawn(["ip", "netns", "exec", o.server, "timeout", "5", "busybox", "nc", "-l", "-p", String(o.port)], {
    stdin: Buffer.from("from-server\n"),
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    await waitListening(o.server, o.port);
    const cli = run(["ip", "netns", "exec", o.client, "timeout", "5", "busybox", "nc", "-w", "2", o.addr, String(o.connectPort ?? o.port)], {
      stdin: "from-client\n",
      allowFail: true,
    });
    const got = await new Response(srv.stdout).text();
    return cli.stdout.includes("from-server") && got.includes("from-client");
  } finally {
    srv.kill();
    await srv.exited;
  }
}

/** Waits until something listens on a TCP port inside a namespace (ss reads the namespace's table). */
export async function waitListening(ns: string, port: number, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const out = run(["ip", "netns", "exec", ns, "ss", "-Hltn", `sport = :${port}`], { allowFail: true }).stdout;
    if (out.trim()) return;
    await Bun.sleep(20);
  }
  throw new Error(`nothing listens on port ${port} in ${ns}`);
}

/**
 * How many of three echo requests reach `target` when `from` pings `dst` (optionally from a
 * given source). The path is primed first with the pod's real address (neighbour entries
 * resolved), so what is counted is only the source check. When arrivals are expected the
 * counter is polled (a loaded machine can be slow); otherwise it is read after a pause
 * long enough for the primed path.
 */
export async function echoesDelivered(o: { from: string; target: string; dst: string; source?: string; real: string; arrive: boolean }): Promise<number> {
  const f = familyOf(o.dst);
  expect(await reaches(o.from, o.dst, { from: o.real })).toBe(true);
  const before = echoRequestsIn(o.target, f);
  pingOnce(o.from, o.dst, { from: o.source, count: 3, wait: 0.3 });
  const until = Date.now() + (o.arrive ? 3000 : 300);
  let delta = echoRequestsIn(o.target, f) - before;
  while (Date.now() < until && !(o.arrive && delta >= 3)) {
    await Bun.sleep(50);
    delta = echoRequestsIn(o.target, f) - before;
  }
  return delta;
}
