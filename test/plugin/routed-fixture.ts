// Shared setup of the routed-mode, anti-spoofing, chaining and podman tests (namespace
// prefix "mnr"): a throwaway node namespace with an uplink veth to a "client" namespace
// (so the node has addresses and something outside the pods can send to it), pod
// namespaces, the compiled plugin driven through the CNI protocol, and independent views
// of the kernel (iproute2, nft, /proc/net/snmp counters, real traffic with ping and nc).
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { REF_CNI_DIR, requireBinary } from "../helpers/binary.ts";
import { cni, type CniCall, type CniReply } from "../helpers/cni.ts";
import { createNetns, deleteNetns, inNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";

export const PREFIX = "mnr";
export type Fam = 4 | 6;

/** IPAM ranges/routes per stack, and the addresses of the node's uplink to the client. */
export const STACKS = {
  v4: { families: [4] as Fam[], ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] },
  v6: { families: [6] as Fam[], ranges: [[{ subnet: "fd00:10:244:1::/64" }]], routes: [{ dst: "::/0" }] },
  dual: {
    families: [4, 6] as Fam[],
    ranges: [[{ subnet: "10.244.1.0/24" }], [{ subnet: "fd00:10:244:1::/64" }]],
    routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0" }],
  },
} as const;
export type Stack = keyof typeof STACKS;

export const UPLINK = { node: { 4: "192.168.77.1", 6: "fd77::1" }, client: { 4: "192.168.77.2", 6: "fd77::2" } } as const;

export interface PodRef {
  pod: string;
  id: string;
  ifname?: string;
}

const live = new Set<TestNode>();

export class TestNode {
  readonly ns: string;
  /** A namespace outside the node, wired to it by the veth "up0" (node) / "eth0" (client). */
  readonly client: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** A dir holding mncni and mncni-ipam (links to the binary under test); CNI_PATH starts with it. */
  readonly binDir: string;
  readonly cniPath: string;
  readonly bin: string;
  private readonly pods = new Set<string>();

  constructor() {
    this.bin = resolve(requireBinary());
    this.dir = mkdtempSync(`/tmp/${PREFIX}-test-${process.pid}-`);
    this.dataDir = `${this.dir}/ipam`;
    this.logFile = `${this.dir}/cni.log`;
    this.binDir = `${this.dir}/bin`;
    run(["mkdir", "-p", this.binDir]);
    symlinkSync(this.bin, `${this.binDir}/mncni`);
    symlinkSync(this.bin, `${this.binDir}/mncni-ipam`);
    this.cniPath = `${this.binDir}:${REF_CNI_DIR}`;
    live.add(this);
    this.ns = createNetns(PREFIX);
    this.client = createNetns(PREFIX);
    run(["ip", "-n", this.ns, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", this.client]);
    for (const [ns, dev, side] of [[this.ns, "up0", "node"], [this.client, "eth0", "client"]] as const) {
      run(["ip", "-n", ns, "addr", "add", `${UPLINK[side][4]}/24`, "dev", dev]);
      run(["ip", "-n", ns, "addr", "add", `${UPLINK[side][6]}/64`, "dev", dev, "nodad"]);
      run(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    // The client reaches the pod ranges through the node, as a machine on the node's LAN would.
    run(["ip", "-n", this.client, "route", "add", "10.244.0.0/16", "via", UPLINK.node[4]]);
    run(["ip", "-n", this.client, "-6", "route", "add", "fd00:10:244::/48", "via", UPLINK.node[6]]);
  }

  pod(): string {
    const name = createNetns(PREFIX);
    this.pods.add(name);
    return name;
  }

  deletePod(name: string): void {
    deleteNetns(name);
    this.pods.delete(name);
  }

  /** An mncni config; `extra` overrides top-level fields (mode, antiSpoofing, ...). */
  conf(o: { stack?: Stack; name?: string; cniVersion?: string; extra?: Record<string, unknown> } = {}): Record<string, any> {
    const s = STACKS[o.stack ?? "dual"];
    return {
      cniVersion: o.cniVersion ?? "1.1.0",
      name: o.name ?? "mnrnet",
      type: "mncni",
      mode: "routed",
      logFile: this.logFile,
      ipam: { type: "mncni-ipam", ranges: s.ranges, routes: s.routes, dataDir: this.dataDir },
      ...o.extra,
    };
  }

  call(command: CniCall["command"], conf: object, p?: PodRef): CniReply {
    const perPod = p !== undefined;
    return cni({
      command,
      conf,
      bin: this.bin,
      nodeNs: this.ns,
      path: this.cniPath,
      containerId: perPod ? p.id : undefined,
      netns: perPod ? netnsPath(p.pod) : undefined,
      ifname: perPod ? (p.ifname ?? "eth0") : undefined,
    });
  }

  add(conf: object, p: PodRef): any {
    const r = this.call("ADD", conf, p);
    if (r.code !== 0) throw new Error(`ADD ${p.id} failed (${r.code}): ${r.stdout}${r.stderr}`);
    return r.json;
  }

  /** A fresh pod namespace with an attachment; returns the pod, its id and the Result. */
  addPod(conf: object, id: string): PodRef & { result: any } {
    const pod = this.pod();
    return { pod, id, result: this.add(conf, { pod, id }) };
  }

  check(conf: object, prevResult: object, p: PodRef): CniReply {
    return this.call("CHECK", { ...conf, prevResult }, p);
  }

  del(conf: object, p: PodRef): CniReply {
    return this.call("DEL", conf, p);
  }

  gc(conf: object, valid: PodRef[]): CniReply {
    return this.call("GC", { ...conf, "cni.dev/valid-attachments": valid.map((v) => ({ containerID: v.id, ifname: v.ifname ?? "eth0" })) });
  }

  destroy(): void {
    for (const p of this.pods) deleteNetns(p);
    this.pods.clear();
    // The node namespace takes its veths, routes and nft tables with it.
    deleteNetns(this.client);
    deleteNetns(this.ns);
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

export function destroyAllNodes(): void {
  for (const n of [...live]) n.destroy();
}

// ---- independent views --------------------------------------------------------------

export const plain = (cidr: string) => cidr.split("/")[0]!;
export const familyOf = (addr: string): Fam => (addr.includes(":") ? 6 : 4);

export interface IpLink {
  ifindex: number;
  ifname: string;
  address: string;
  flags: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

export function links(ns: string): IpLink[] {
  return ipJson<IpLink[]>(ns, ["-d", "link", "show"]);
}

/** The host veth of an attachment, found by the alias mncni writes (not by its naming code). */
export function hostVethOf(node: string, id: string, network = "mnrnet", ifname = "eth0"): IpLink | undefined {
  return links(node).find((l) => l.ifalias === `mncni/${network}/${id}/${ifname}`);
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  protocol?: string;
  flags?: string[];
}

/** Routes tagged with mncni's route protocol (77) in a namespace, both families. */
export function mncniRoutes(ns: string): IpRoute[] {
  return ([4, 6] as const).flatMap((f) => ipJson<IpRoute[]>(ns, [`-${f}`, "route", "show", "proto", "77"]));
}

export function routes(ns: string, f: Fam): IpRoute[] {
  return ipJson<IpRoute[]>(ns, [`-${f}`, "route", "show"]);
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

/** Global addresses (CIDR) of an interface. */
export function addrs(ns: string, ifname: string): string[] {
  const out = ipJson<{ addr_info: { local: string; prefixlen: number; scope: string }[] }[]>(ns, ["addr", "show", "dev", ifname]);
  return (out[0]?.addr_info ?? []).filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`);
}

/** dataDir/<network>/<ip> reservation files. */
export function reservedIps(dataDir: string, network = "mnrnet"): string[] {
  try {
    return readdirSync(`${dataDir}/${network}`).filter((n) => isIP(n) !== 0);
  } catch {
    return [];
  }
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
export function ping(ns: string, dst: string, opts: { from?: string; count?: number; wait?: number } = {}): boolean {
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
    if (ping(ns, dst, { from: opts.from })) return true;
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
