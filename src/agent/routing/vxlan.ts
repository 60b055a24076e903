// VXLAN: other nodes' pod CIDRs are reached through a VXLAN device per underlay family
// (mncni.vxlan over IPv4, mncni.vxlan6 over IPv6), for nodes that share no L2 segment.
// Per peer and family, as Flannel's vxlan backend: an FDB entry (the peer's VTEP MAC → its
// InternalIP), a permanent neighbour (the gateway, its pod CIDR's network address → that MAC)
// and a route to its pod CIDR via that gateway, onlink, on the device. VTEP MACs and gateways
// are derived from what Nodes publish (vtep.ts), so there is nothing to learn or announce:
// learning is off and the kernel never floods.
// Ownership: the devices by name (their FDB entries and neighbours are all mncni's); a route is
// VXLAN's when it carries RTPROT_MNCNI and an onlink gateway, which neither host-gw (gateway on
// a connected subnet) nor the plugin's routed mode (no gateway) ever writes.
import { readFileSync } from "node:fs";
import { NUD, RTPROT_MNCNI, isErrno, type Link, type RouteInfo } from "../../kernel/index.ts";
import { familyOf, type Family } from "../../net/ip.ts";
import { emptyReport, intSetting, type BackendSettings, type RoutingBackend, type RoutingInput, type RoutingKernel, type RoutingReport } from "./backend.ts";
import { syncRoutes, type DesiredRoute } from "./routes.ts";
import { VXLAN_DEVICES, vtepGateway, vtepMAC, vxlanOverhead } from "./vtep.ts";

export interface VxlanSettings {
  vni: number;
  /** UDP destination port (IANA: 4789; the Linux default 8472 is Flannel's). */
  port: number;
  /** Turn transmit checksum offload off on the devices (default: on kernels where it is broken). */
  txChecksumOff?: boolean;
}

/** Kernels before 5.7 corrupt the inner checksum of NATed packets with VXLAN offload on (Calico's rule). Pure. */
export function txChecksumBroken(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true; // unknown: the safe side
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 5 || (major === 5 && minor < 7);
}

/** This kernel's release (uname -r). */
export function kernelRelease(): string {
  try {
    return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    return "";
  }
}

export const DEFAULT_VXLAN: VxlanSettings = { vni: 1, port: 4789 };

/** VXLAN's flags (vxlan and auto use them): the same on every node. */
export const VXLAN_SETTINGS = {
  flags: {
    "vxlan-vni": { type: "string", value: "N", help: "VXLAN network identifier of the vxlan and auto backends (default 1)" },
    "vxlan-port": { type: "string", value: "PORT", help: "VXLAN UDP port (default 4789, the IANA port)" },
  },
  parse: (raw) => ({
    vni: intSetting("vxlanVni", raw("vxlanVni"), DEFAULT_VXLAN.vni, 1, 0xffffff),
    port: intSetting("vxlanPort", raw("vxlanPort"), DEFAULT_VXLAN.port, 1, 65535),
  }),
} as const satisfies BackendSettings<VxlanSettings>;

export interface DesiredDevice {
  family: Family;
  name: string;
  vni: number;
  port: number;
  /** This node's InternalIP of the family: the tunnels' source. */
  local: string;
  /** Index of the link holding `local`. */
  underlay: number;
  mac: string;
}

/** One peer pod CIDR reached through the tunnel. */
export interface TunnelEntry {
  node: string;
  family: Family;
  podCIDR: string;
  /** The peer's InternalIP: where its encapsulated packets go. */
  remote: string;
  mac: string;
  gateway: string;
}

export interface DesiredVxlan {
  devices: DesiredDevice[];
  entries: TunnelEntry[];
  problems: string[];
}

/**
 * What VXLAN publishes on this node's Node (key "vxlan"): its VNI and port, which must be the
 * same on every node. A peer publishing others cannot be reached through the tunnel (its
 * packets go to another port, or are dropped for their VNI): reported, not guessed around.
 */
export const vxlanPublished = (s: Pick<VxlanSettings, "vni" | "port">): Record<string, string> => ({ vxlan: `vni=${s.vni},port=${s.port}` });

/** Devices and per-peer entries from the input. Pure. */
export function desiredVxlan(input: RoutingInput, s: VxlanSettings): DesiredVxlan {
  const problems: string[] = [];
  const devices: DesiredDevice[] = [];
  const selfIPs = input.selfIPs ?? [];
  const families = new Set<Family>(input.families ?? []);
  for (const p of input.peers) for (const c of p.podCIDRs) families.add(familyOf(c));
  // Why a family has no device: said for each peer that would need it (none: no problem).
  const missing: Record<Family, string> = { 4: "", 6: "" };
  for (const family of [4, 6] as const) {
    if (!families.has(family)) continue;
    const local = selfIPs.find((ip) => familyOf(ip) === family);
    missing[family] = `this node has no IPv${family} InternalIP to tunnel from`;
    if (!local) continue;
    const addr = input.localAddrs.find((a) => a.address === local);
    if (!addr || addr.index === undefined) {
      missing[family] = `this node's InternalIP "${local}" is not an address of this node (no device "${VXLAN_DEVICES[family]}")`;
      continue;
    }
    devices.push({ family, name: VXLAN_DEVICES[family], vni: s.vni, port: s.port, local, underlay: addr.index, mac: vtepMAC(local) });
  }
  const own = new Set(input.localAddrs.map((a) => a.address));
  const entries: TunnelEntry[] = [];
  const mine = vxlanPublished(s).vxlan;
  for (const { name, podCIDRs, internalIPs, published } of input.peers) {
    const theirs = published?.vxlan;
    if (podCIDRs.length && theirs !== undefined && theirs !== mine) {
      problems.push(`VXLAN to node "${name}" cannot work: it publishes ${theirs}, this node uses ${mine} (--vxlan-vni and --vxlan-port must be the same on every node)`);
    }
    for (const podCIDR of podCIDRs) {
      const family = familyOf(podCIDR);
      const remote = internalIPs.find((ip) => familyOf(ip) === family);
      if (!remote) {
        problems.push(`cannot tunnel to pod CIDR "${podCIDR}" of node "${name}": the node has no IPv${family} InternalIP`);
        continue;
      }
      if (own.has(remote)) {
        problems.push(`cannot tunnel to pod CIDR "${podCIDR}" of node "${name}": its InternalIP "${remote}" is an address of this node`);
        continue;
      }
      if (!devices.some((d) => d.family === family)) {
        problems.push(`cannot tunnel to pod CIDR "${podCIDR}" of node "${name}": ${missing[family] || `this node has no IPv${family} InternalIP to tunnel from`}`);
        continue;
      }
      entries.push({ node: name, family, podCIDR, remote, mac: vtepMAC(remote), gateway: vtepGateway(podCIDR) });
    }
  }
  return { devices, entries, problems };
}

const owns = (r: RouteInfo) => r.protocol === RTPROT_MNCNI && r.gw !== undefined && r.onlink === true && r.type === "unicast";

/** Runs one kernel write, counting it and collecting its error as a sentence. */
function attempt(rep: RoutingReport, what: string, fn: () => void): boolean {
  rep.writes++;
  try {
    fn();
    return true;
  } catch (e) {
    rep.errors.push(`cannot ${what}: ${(e as Error).message}`);
    return false;
  }
}

/** The device as desired: recreated when an attribute the kernel cannot change in place differs. */
function syncDevice(nl: RoutingKernel, d: DesiredDevice, mtu: number, s: VxlanSettings, rep: RoutingReport): Link | undefined {
  let l = nl.link(d.name);
  const v = l?.vxlan;
  if (l && (l.kind !== "vxlan" || !v || v.vni !== d.vni || v.port !== d.port || v.local !== d.local || v.device !== d.underlay || v.learning !== false)) {
    if (!attempt(rep, `delete VXLAN device "${d.name}" (settings changed)`, () => nl.delLink(d.name))) return undefined;
    rep.changes.push(`remove device ${d.name} (settings changed)`);
    l = undefined;
  }
  if (!l) {
    const ok = attempt(rep, `add VXLAN device "${d.name}" (VNI ${d.vni}, port ${d.port}, local ${d.local})`, () =>
      nl.addVxlan({ name: d.name, vni: d.vni, port: d.port, local: d.local, device: d.underlay, learning: false, mtu, mac: d.mac }));
    if (!ok) return undefined;
    rep.changes.push(`add device ${d.name} vni ${d.vni} port ${d.port} local ${d.local} mtu ${mtu}`);
    l = nl.link(d.name);
    if (!l) return void rep.errors.push(`cannot find VXLAN device "${d.name}" after creating it`);
  }
  if (l.mtu !== mtu || l.mac !== d.mac) {
    if (attempt(rep, `set MTU ${mtu} and MAC ${d.mac} of "${d.name}"`, () => nl.setLink(l!.index, { mtu, mac: d.mac }))) rep.changes.push(`set ${d.name} mtu ${mtu} mac ${d.mac}`);
  }
  // Transmit checksum offload off on kernels that mishandle it, as Calico does (before 5.7;
  // Flannel turns it off on every kernel): with it on, the inner checksum is left to be
  // completed on transmit (CHECKSUM_PARTIAL), and on those kernels a packet NATed on its way
  // into the tunnel (a Service's DNAT, kube-proxy's SNAT) leaves with a wrong inner checksum
  // that the receiver drops, so Service traffic over VXLAN stalls (kubernetes#88986,
  // flannel#1279). Later kernels get it right, and there the offload is left on: turning it
  // off also turns off TSO on the device, so every segment is encapsulated on its own.
  if (s.txChecksumOff) {
    try {
      if (nl.txChecksumOn(d.name) && attempt(rep, `turn off tx checksum offload of "${d.name}"`, () => nl.setTxChecksum(d.name, false))) {
        rep.changes.push(`set ${d.name} tx-checksumming off`);
      }
    } catch (e) {
      rep.errors.push(`cannot read tx checksum offload of "${d.name}": ${(e as Error).message}`);
    }
  }
  if (!l.up && attempt(rep, `set "${d.name}" up`, () => nl.setLink(l!.index, { up: true }))) rep.changes.push(`set ${d.name} up`);
  return l;
}

/** FDB entries (MAC → remote) and permanent neighbours (gateway → MAC) on one device. */
function syncEntries(nl: RoutingKernel, dev: Link, family: Family, entries: TunnelEntry[], rep: RoutingReport): void {
  const fdbWant = new Map<string, TunnelEntry>();
  const neighWant = new Map<string, TunnelEntry>();
  for (const e of entries) {
    fdbWant.set(e.mac, e);
    neighWant.set(e.gateway, e);
  }
  const fdbHave = new Map<string, string | undefined>();
  for (const n of nl.neighs({ index: dev.index, family: "bridge" })) if (n.mac && n.mac !== "00:00:00:00:00:00") fdbHave.set(n.mac, n.dst);
  for (const [mac, dst] of fdbHave) {
    if (fdbWant.has(mac)) continue;
    if (attempt(rep, `delete FDB entry "${mac}" dst "${dst}" on "${dev.name}"`, () => nl.delNeigh({ index: dev.index, family: "bridge", mac, dst }))) rep.changes.push(`remove fdb ${mac} dst ${dst} dev ${dev.name}`);
  }
  for (const [mac, e] of fdbWant) {
    if (fdbHave.get(mac) === e.remote) continue;
    if (attempt(rep, `add FDB entry "${mac}" dst "${e.remote}" on "${dev.name}" (node "${e.node}")`, () => nl.addNeigh({ index: dev.index, family: "bridge", mac, dst: e.remote, replace: true }))) {
      rep.changes.push(`add fdb ${mac} dst ${e.remote} dev ${dev.name} (node ${e.node})`);
    }
  }
  const neighHave = new Map<string, string | undefined>();
  for (const n of nl.neighs({ index: dev.index, family })) if (n.ip && n.state & NUD.PERMANENT) neighHave.set(n.ip, n.mac);
  for (const [ip] of neighHave) {
    if (neighWant.has(ip)) continue;
    if (attempt(rep, `delete neighbour "${ip}" on "${dev.name}"`, () => nl.delNeigh({ index: dev.index, ip }))) rep.changes.push(`remove neigh ${ip} dev ${dev.name}`);
  }
  for (const [ip, e] of neighWant) {
    if (neighHave.get(ip) === e.mac) continue;
    if (attempt(rep, `add neighbour "${ip}" lladdr "${e.mac}" on "${dev.name}" (node "${e.node}")`, () => nl.addNeigh({ index: dev.index, ip, mac: e.mac, state: "permanent", replace: true }))) {
      rep.changes.push(`add neigh ${ip} lladdr ${e.mac} dev ${dev.name} (node ${e.node})`);
    }
  }
}

/** The underlay MTU of a device: that of the link holding the tunnel's source address. */
function underlayMTU(nl: RoutingKernel, index: number): number {
  return nl.link(index)?.mtu ?? 1500;
}

function removeDevices(nl: RoutingKernel, keep: ReadonlySet<string>, rep: RoutingReport): void {
  for (const name of Object.values(VXLAN_DEVICES)) {
    if (keep.has(name) || !nl.link(name)) continue;
    rep.writes++;
    try {
      nl.delLink(name);
      rep.changes.push(`remove device ${name}`);
    } catch (e) {
      if (!isErrno(e, "ENODEV")) rep.errors.push(`cannot delete VXLAN device "${name}": ${(e as Error).message}`);
    }
  }
}

export function vxlanBackend(settings: VxlanSettings = DEFAULT_VXLAN): RoutingBackend {
  const s = { ...settings, txChecksumOff: settings.txChecksumOff ?? txChecksumBroken(kernelRelease()) };
  return {
    name: "vxlan",
    mtuOverhead: vxlanOverhead,
    ownsRoute: owns,
    reconcile(input, nl) {
      const rep = emptyReport();
      const want = desiredVxlan(input, s);
      rep.problems.push(...want.problems);
      const routes: DesiredRoute[] = [];
      for (const d of want.devices) {
        const dev = syncDevice(nl, d, underlayMTU(nl, d.underlay) - vxlanOverhead(d.family), s, rep);
        if (!dev) continue;
        const entries = want.entries.filter((e) => e.family === d.family);
        syncEntries(nl, dev, d.family, entries, rep);
        for (const e of entries) {
          routes.push({ dst: e.podCIDR, gw: e.gateway, oif: dev.index, onlink: true, family: e.family, node: e.node });
          rep.paths.set(e.node, "tunnel");
        }
      }
      removeDevices(nl, new Set(want.devices.map((d) => d.name)), rep);
      syncRoutes(nl, routes, owns, rep);
      rep.published = vxlanPublished(s);
      return rep;
    },
    remove(nl) {
      const rep = emptyReport();
      syncRoutes(nl, [], owns, rep);
      removeDevices(nl, new Set(), rep);
      return rep;
    },
  };
}
