// Every attachment of a node as the kernel, the IPAM and the runtime's result cache each see
// it, put side by side, with the problems their disagreement shows: a host veth without a
// reservation, a reservation without a veth (a leak), a pod whose routes differ from its
// result, anti-spoofing elements missing. Each source is read independently; none is trusted
// to describe the others.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeKey, Netlink, Nftables, type Link, type NeighInfo, type NftKeyType, type RouteInfo } from "../kernel/index.ts";
import { DiskStore } from "../ipam/disk-store.ts";
import { formatIp } from "../ipam/ip-bigint.ts";
import { addrOf, familyOf } from "../net/ip.ts";
import { ANTISPOOF } from "../firewall/names.ts";
import { HOST_VETH_PREFIX, hostVethName, parseHostVethAlias } from "../plugin/hostveth.ts";
import type { InvocationRecord } from "../cni/invocation-log.ts";
import { readInvocations } from "../cni/log-reader.ts";
import { selectingPolicies, type SelectingPolicy } from "./policy-view.ts";
import type { ClusterState } from "../cluster/types.ts";
import { netnsExists, type NodeView } from "../cni/node-view.ts";
import type { PodMTUView } from "./pod-mtu.ts";
import { nodeFastPath, podFastPath, type PodFastPathView } from "./fast-path.ts";

export interface LinkView {
  name: string;
  index: number;
  mac: string;
  mtu: number;
  up: boolean;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface CallSummary {
  time: string;
  outcome: string;
  durationMs: number;
  msg?: string;
  netns?: string;
  /** The pod the runtime named in CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME). */
  podNamespace?: string;
  podName?: string;
}

export interface Attachment {
  containerId: string;
  ifname: string;
  podNamespace?: string;
  podName?: string;
  netns?: string;
  hostVeth?: LinkView;
  podInterface?: LinkView;
  /** From the runtime's cached result. */
  resultIps: string[];
  resultRoutes: ResultRoute[];
  /** Addresses reserved in the IPAM's data directory for this attachment. */
  reservations: string[];
  /** Addresses on the pod's interface, as the kernel has them. */
  podAddresses: string[];
  podRoutes: { dst: string; gw?: string; dev?: string }[];
  /** Host routes through the host veth (routed mode) and neighbours of the pod's addresses. */
  hostRoutes: { dst: string; dev: string; gw?: string }[];
  hostNeighbours: { ip?: string; mac?: string; dev: string; state: number }[];
  /** Anti-spoofing set elements keyed by the host veth: "set: value". */
  antiSpoofing: string[];
  /**
   * The policies that select this pod, from the cluster state the agent reads; undefined when
   * no cluster state was given (the command cannot know, rather than "none").
   */
  policies?: SelectingPolicy[];
  /** Whether its traffic with the node's other plain pods takes the eBPF fast path, or why not; absent when the fast path is off. */
  fastPath?: PodFastPathView;
  /** The last call of each verb from the invocation log. */
  history: Record<string, CallSummary>;
  problems: string[];
}

export interface NodeAttachments {
  node: string;
  network: string;
  attachments: Attachment[];
  /** Problems of the node itself (namespace missing, no conflist). */
  problems: string[];
  /** The pod MTU the conflist gives new pods and why (the agent's account: added by the command, which asks the agent). */
  podMTU?: PodMTUView;
}

interface CacheEntry {
  containerId: string;
  ifName: string;
  networkName: string;
  cniArgs?: Record<string, string>;
  result?: { ips?: { address: string }[]; routes?: ResultRoute[]; interfaces?: { name: string; sandbox?: string; mac?: string }[] };
}

function cachedResults(v: NodeView): CacheEntry[] {
  let names: string[];
  try {
    names = readdirSync(v.cacheDir).filter((n) => n.startsWith(`${v.network}-`));
  } catch {
    return [];
  }
  const out: CacheEntry[] = [];
  for (const n of names) {
    try {
      const e = JSON.parse(readFileSync(join(v.cacheDir, n), "utf8")) as CacheEntry;
      if (e.networkName === v.network && e.containerId) out.push(e);
    } catch {
      // unreadable cache entry: the runtime has the same problem; the log shows its calls
    }
  }
  return out;
}

const linkView = (l: Link): LinkView => ({ name: l.name, index: l.index, mac: l.mac, mtu: l.mtu, up: l.up });
const key = (containerId: string, ifname: string) => `${containerId}/${ifname}`;

/** Last call per verb for each attachment, from the log. */
function historyOf(records: InvocationRecord[], network: string): Map<string, Record<string, CallSummary>> {
  const out = new Map<string, Record<string, CallSummary>>();
  for (const r of records) {
    if (r.plugin !== "mncni" || !r.containerId || (r.network && r.network !== network)) continue;
    const k = key(r.containerId, r.ifname ?? "eth0");
    const h = out.get(k) ?? {};
    h[r.command] = {
      time: r.time, outcome: r.outcome, durationMs: r.durationMs, ...(r.msg ? { msg: r.msg } : {}), ...(r.netns ? { netns: r.netns } : {}),
      ...(r.podNamespace ? { podNamespace: r.podNamespace } : {}), ...(r.podName ? { podName: r.podName } : {}),
    };
    out.set(k, h);
  }
  return out;
}

const SET_TYPES: Record<string, NftKeyType[]> = {
  [ANTISPOOF.ports]: ["ifname"], [ANTISPOOF.macs]: ["ifname", "ether_addr"], [ANTISPOOF.addr(4)]: ["ifname", "ipv4_addr"], [ANTISPOOF.addr(6)]: ["ifname", "ipv6_addr"],
};

/** host veth name -> "set: value" lines, from whichever family's anti-spoofing table exists. */
function antiSpoofElements(nft: Nftables): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const family of ANTISPOOF.families) {
    if (!nft.table(family, ANTISPOOF.name)) continue;
    for (const [set, types] of Object.entries(SET_TYPES)) {
      let elems;
      try {
        elems = nft.setElements({ family, table: ANTISPOOF.name, set });
      } catch {
        continue; // a layout without this set
      }
      for (const e of elems) {
        const [port, value] = decodeKey(types, e.key);
        const lines = out.get(port!) ?? [];
        lines.push(value === undefined ? `${family} ${set}` : `${family} ${set}: ${value}`);
        out.set(port!, lines);
      }
    }
  }
  return out;
}

function podSide(netns: string, ifname: string): Pick<Attachment, "podInterface" | "podAddresses" | "podRoutes"> | string {
  if (!netnsExists(netns)) return `pod namespace "${netns}" is gone`;
  let nl: Netlink;
  try {
    nl = Netlink.open(netns);
  } catch (e) {
    return `cannot open pod namespace "${netns}": ${(e as Error).message}`;
  }
  try {
    const links = nl.links();
    const l = links.find((x) => x.name === ifname);
    if (!l) return `interface "${ifname}" missing in pod namespace "${netns}"`;
    const name = new Map(links.map((x) => [x.index, x.name]));
    return {
      podInterface: linkView(l),
      podAddresses: nl.addrs({ index: l.index }).filter((a) => a.scope === 0).map((a) => a.cidr),
      podRoutes: nl.routes().map((r: RouteInfo) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}), ...(r.oif !== undefined ? { dev: name.get(r.oif) ?? String(r.oif) } : {}) })),
    };
  } finally {
    nl.close();
  }
}

const normDst = (d: string) => (d === "default" ? "0.0.0.0/0" : d);

/** Routes of the result missing from the pod (by destination and gateway). */
function missingRoutes(a: Attachment): string[] {
  return a.resultRoutes
    .filter((want) => !a.podRoutes.some((r) => r.dst === normDst(want.dst) && (want.gw === undefined || r.gw === want.gw)))
    .map((r) => `${r.dst}${r.gw ? ` via ${r.gw}` : ""}`);
}

/**
 * What anti-spoofing lacks for this attachment: the veth in `ports`, the pod's MAC in `macs`
 * (bridge mode only: a routed pod's frames end at its veth),
 * each of its addresses in `addr4`/`addr6`. A missing address drops every packet the pod
 * sends from it, so the sets are compared element by element with the pod, not just counted.
 */
function antiSpoofGaps(a: Attachment, vethName: string, macs: boolean): string[] {
  if (a.antiSpoofing.length === 0) return [`no anti-spoofing elements for "${vethName}": every packet the pod sends is dropped`];
  const has = (set: string, value?: string) => a.antiSpoofing.some((l) => (value === undefined ? l.endsWith(` ${set}`) || l.includes(` ${set}: `) : l.endsWith(` ${set}: ${value}`)));
  const out: string[] = [];
  if (!has(ANTISPOOF.ports)) out.push(`anti-spoofing: "${vethName}" missing from set ${ANTISPOOF.ports}`);
  const mac = a.podInterface?.mac;
  if (macs && mac && !has(ANTISPOOF.macs, mac)) out.push(`anti-spoofing: MAC ${mac} of the pod missing from set ${ANTISPOOF.macs} for "${vethName}": every frame the pod sends is dropped`);
  const ips = [...new Set((a.podAddresses.length ? a.podAddresses : a.resultIps).map(addrOf))];
  for (const ip of ips) {
    const set = ANTISPOOF.addr(familyOf(ip));
    if (!has(set, ip)) out.push(`anti-spoofing: address ${ip} of the pod missing from set ${set} for "${vethName}": every packet the pod sends from it is dropped`);
  }
  return out;
}

/** With a cluster state, each pod's selecting policies are named too. */
export function collectAttachments(v: NodeView, cluster?: ClusterState): NodeAttachments {
  const problems: string[] = [];
  if (!netnsExists(v.netns)) return { node: v.name, network: v.network, attachments: [], problems: [`node namespace "${v.netns}" is gone`] };
  if (!v.conflist) problems.push(`no mncni conflist in "${v.confDir}"`);
  const byKey = new Map<string, Attachment>();
  const get = (containerId: string, ifname: string) => {
    const k = key(containerId, ifname);
    let a = byKey.get(k);
    if (!a) {
      a = { containerId, ifname, resultIps: [], resultRoutes: [], reservations: [], podAddresses: [], podRoutes: [], hostRoutes: [], hostNeighbours: [], antiSpoofing: [], history: {}, problems: [] };
      byKey.set(k, a);
    }
    return a;
  };
  for (const c of cachedResults(v)) {
    const a = get(c.containerId, c.ifName);
    a.resultIps = (c.result?.ips ?? []).map((i) => i.address);
    a.resultRoutes = c.result?.routes ?? [];
    const ns = c.result?.interfaces?.find((i) => i.sandbox)?.sandbox;
    if (ns) a.netns = ns;
    if (c.cniArgs?.K8S_POD_NAMESPACE) a.podNamespace = c.cniArgs.K8S_POD_NAMESPACE;
    if (c.cniArgs?.K8S_POD_NAME) a.podName = c.cniArgs.K8S_POD_NAME;
  }
  try {
    for (const r of new DiskStore(v.dataDir, v.network).list().reservations) {
      get(r.containerId, r.ifname ?? "eth0").reservations.push(formatIp(r.ip));
    }
  } catch (e) {
    problems.push(`cannot read IPAM reservations in "${v.dataDir}": ${(e as Error).message}`);
  }
  const host = Netlink.open(v.netns);
  const nft = Nftables.open(v.netns);
  try {
    const links = host.links();
    const linkName = new Map(links.map((l) => [l.index, l.name]));
    const vethByName = new Map<string, Link>();
    for (const l of links) {
      if (!l.name.startsWith(HOST_VETH_PREFIX) || l.kind !== "veth") continue;
      vethByName.set(l.name, l);
      const owner = parseHostVethAlias(l.alias);
      if (owner && owner.network === v.network) get(owner.containerId, owner.ifname);
    }
    const routes = host.routes({ table: 0 });
    const neighs: NeighInfo[] = host.neighs();
    const guards = antiSpoofElements(nft);
    const history = historyOf(readInvocations(v.logFile), v.network);
    const fast = v.fastPath ? nodeFastPath(v, cluster) : undefined;
    if (fast?.problem) problems.push(`fast path: ${fast.problem}`);
    for (const a of byKey.values()) {
      const vethName = hostVethName(v.network, a.containerId, a.ifname);
      const veth = vethByName.get(vethName);
      if (veth) a.hostVeth = linkView(veth);
      a.history = history.get(key(a.containerId, a.ifname)) ?? {};
      const lastAdd = [...Object.entries(a.history)].find(([verb]) => verb === "ADD")?.[1];
      // Without a cached result (a runtime that keeps none, or keeps it elsewhere: containerd
      // 1.6 in /var/lib/cni whatever the node), the ADD's log line names the namespace and pod.
      if (!a.netns && lastAdd?.netns) a.netns = lastAdd.netns;
      if (!a.podName && lastAdd?.podName) {
        a.podName = lastAdd.podName;
        if (lastAdd.podNamespace) a.podNamespace = lastAdd.podNamespace;
      }
      const plain = [...new Set([...a.resultIps.map(addrOf), ...a.reservations])];
      if (veth) {
        a.hostRoutes = routes.filter((r) => r.oif === veth.index).map((r) => ({ dst: r.dst, dev: veth.name, ...(r.gw ? { gw: r.gw } : {}) }));
        a.antiSpoofing = guards.get(veth.name) ?? [];
      }
      a.hostNeighbours = neighs.filter((n) => n.ip !== undefined && plain.includes(n.ip)).map((n) => ({ ip: n.ip, mac: n.mac, dev: linkName.get(n.index) ?? String(n.index), state: n.state }));
      if (cluster && a.podNamespace && a.podName) a.policies = selectingPolicies(cluster, `${a.podNamespace}/${a.podName}`);
      if (fast && veth) a.fastPath = podFastPath(fast, plain[0]);
      // What disagrees.
      const live = a.resultIps.length > 0 || !!veth;
      if (!veth && (a.resultIps.length || a.reservations.length)) a.problems.push(`host veth "${vethName}" missing`);
      if (veth && a.reservations.length === 0) a.problems.push(`host veth "${vethName}" has no IPAM reservation`);
      for (const ip of a.resultIps.map(addrOf)) if (!a.reservations.includes(ip)) a.problems.push(`address ${ip} of the result is not reserved in "${join(v.dataDir, v.network)}"`);
      if (!live && a.reservations.length) a.problems.push(`reservation ${a.reservations.join(", ")} without an attachment (leak)`);
      if (a.netns && live) {
        const side = podSide(a.netns, a.ifname);
        if (typeof side === "string") a.problems.push(side);
        else {
          Object.assign(a, side);
          const missing = missingRoutes(a);
          if (missing.length) a.problems.push(`pod routes differ from its result: missing ${missing.join(", ")}`);
          for (const ip of a.resultIps) if (!a.podAddresses.includes(ip)) a.problems.push(`address ${ip} of the result is not on the pod's ${a.ifname}`);
        }
      }
      if (veth && v.antiSpoofing) a.problems.push(...antiSpoofGaps(a, vethName, v.mode === "bridge"));
      if (a.podInterface && v.podMTU !== undefined && a.podInterface.mtu > v.podMTU) {
        a.problems.push(`pod MTU ${a.podInterface.mtu} is above this node's pod MTU ${v.podMTU} (${v.conflist ?? "the conflist"}): its packets above ${v.podMTU} bytes are dropped or fragmented on the way; recreate the pod`);
      }
      if (lastAdd?.outcome === "error" && !veth) a.problems.push(`last ADD failed: ${lastAdd.msg ?? "(no message)"}`);
    }
  } finally {
    nft.close();
    host.close();
  }
  const attachments = [...byKey.values()].sort((x, y) => (x.podName ?? x.containerId).localeCompare(y.podName ?? y.containerId));
  return { node: v.name, network: v.network, attachments, problems };
}

/** The attachment a user named: pod name (ns/name or name), an address, or a container ID (prefix). */
export function findAttachment(all: Attachment[], what: string): Attachment | undefined {
  const [ns, name] = what.includes("/") ? what.split("/", 2) : [undefined, what];
  return (
    all.find((a) => a.podName === name && (ns === undefined || a.podNamespace === ns)) ??
    all.find((a) => [...a.resultIps, ...a.podAddresses].some((ip) => addrOf(ip) === what) || a.reservations.includes(what)) ??
    all.find((a) => a.containerId === what) ??
    all.find((a) => a.containerId.startsWith(what))
  );
}
