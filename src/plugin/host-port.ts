// hostPort (the `portMappings` capability) as DNAT in a table mncni owns, `inet
// mncni-hostport`, written once per node with `nft -f` through src/firewall/owned-table.ts
// (race-safe creation) and holding no per-pod rule: ADD and DEL add
// and remove map elements over nfnetlink, one transaction each.
//
// - maps port4/port6 (protocol . host port) and addr4/addr6 (host address . protocol . host
//   port) give the pod's address and port: traffic to any local address (prerouting: from
//   other hosts and from pods; output: from the node itself, localhost included) is DNATed;
//   an element records "net=NETWORK HOSTVETH" so DEL and GC find a pod's elements.
// - Masquerade only where the reply would otherwise miss the node's conntrack: sources on
//   127.0.0.0/8 (the node's localhost, with route_localnet on the pod-facing interface,
//   as portmap does); a pod reaching itself (sets self4/self6: its address as source and,
//   after DNAT, destination, whatever interfaces the packet passed); and connections that
//   arrive on the very interface they leave by (set `sameif`, iifname . oifname: another
//   pod on the same bridge, sent up to the node and back down, whose reply would otherwise
//   go straight back over the bridge; the tests show it needed with and without
//   br_netfilter). Other
//   connections keep their source address. Only connections this table DNATed are
//   touched (a ct mark bit set with the DNAT).
// - Same host address, protocol and port twice is a conflict: elements are added with
//   NLM_F_EXCL, so of two racing ADDs one fails, and the error names the port.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { encodeKey, isErrno, type Link, type Netlink, type NftKeyType, type Nftables, type SetElement, type SetElemChange, type SetRef } from "../kernel/index.ts";
import { familyOf, type Family } from "../net/ip.ts";
import type { PortMapping } from "./capabilities.ts";
import { forgetHostPortFlows } from "./conntrack-cleanup.ts";
import { openLocalnet } from "./localnet.ts";
import { nftApply } from "./nft-apply.ts";
import { withNftables } from "./nft-socket.ts";
import type { UndoStack } from "./undo.ts";
import { HOSTPORT } from "../firewall/names.ts";
import { ensureTable as ensureOwnedTable } from "../firewall/owned-table.ts";

const HOSTPORT_TABLE = HOSTPORT.name;
const FAMILY = HOSTPORT.family;
const LAYOUT_VERSION = HOSTPORT.layout;
/** The ct mark bit of connections this table DNATed (what postrouting masquerades among). */
const HOSTPORT_CT_MARK = 0x00400000;
const SET_SIZE = 8192;

interface MapSpec {
  name: string;
  family: Family;
  /** Keyed by the host address too (a hostIP was given). */
  byAddr: boolean;
  key: NftKeyType[];
  data: NftKeyType[];
}

const addrType = (f: Family): NftKeyType => (f === 4 ? "ipv4_addr" : "ipv6_addr");
const MAPS: MapSpec[] = ([4, 6] as Family[]).flatMap((f) => [
  { name: `addr${f}`, family: f, byAddr: true, key: [addrType(f), "inet_proto", "inet_service"], data: [addrType(f), "inet_service"] },
  { name: `port${f}`, family: f, byAddr: false, key: ["inet_proto", "inet_service"], data: [addrType(f), "inet_service"] },
]);
const SAMEIF: NftKeyType[] = ["ifname", "ifname"];
/** Sets of (address . address): a pod's own address twice, what a pod reaching itself looks like after DNAT. */
const SELF = ([4, 6] as Family[]).map((f) => ({ name: `self${f}`, family: f, type: [addrType(f), addrType(f)] }));
const OWNED_SETS = [...MAPS.map((m) => m.name), ...SELF.map((s) => s.name), "sameif"];

function tableBody(): string {
  const mark = `0x${HOSTPORT_CT_MARK.toString(16).padStart(8, "0")}`;
  const maps = MAPS.map((m) => `  map ${m.name} {\n    type ${m.key.join(" . ")} : ${m.data.join(" . ")}\n    size ${SET_SIZE}\n  }\n`).join("");
  const dnat = MAPS.map((m) => {
    const ip = m.family === 4 ? "ip" : "ip6";
    const key = `${m.byAddr ? `${ip} daddr . ` : ""}meta l4proto . th dport`;
    return `    meta nfproto ipv${m.family} ${key} @${m.name} ct mark set ct mark | ${mark} dnat ${ip} to ${key} map @${m.name}\n`;
  }).join("");
  return (
    maps +
    SELF.map((x) => `  set ${x.name} {\n    type ${x.type.join(" . ")}\n    size ${SET_SIZE}\n  }\n`).join("") +
    `  set sameif {\n    type ${SAMEIF.join(" . ")}\n    size ${SET_SIZE}\n  }\n` +
    `  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump hostports\n  }\n` +
    `  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump hostports\n  }\n` +
    `  chain hostports {\n${dnat}  }\n` +
    `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n` +
    `    ct mark & ${mark} == ${mark} ip saddr 127.0.0.0/8 masquerade\n` +
    `    ct mark & ${mark} == ${mark} ip saddr . ip daddr @self4 masquerade\n` +
    `    ct mark & ${mark} == ${mark} ip6 saddr . ip6 daddr @self6 masquerade\n` +
    `    ct mark & ${mark} == ${mark} iifname . oifname @sameif masquerade\n  }\n`
  );
}

function ensureTable(nft: Nftables): void {
  ensureOwnedTable(nft, { family: FAMILY, name: HOSTPORT_TABLE, comment: LAYOUT_VERSION, body: tableBody() }, nftApply, (current) =>
    new CniError(ErrorCode.Internal, `cannot use table ${FAMILY} ${HOSTPORT_TABLE}: it has another layout ("${current.comment ?? ""}") than this mncni writes ("${LAYOUT_VERSION}")`));
}

const ref = (set: string): SetRef => ({ family: FAMILY, table: HOSTPORT_TABLE, set });
const NET_TAG = "net=";
const ownerComment = (network: string, hostIfname: string) => `${NET_TAG}${network} ${hostIfname}`;

/** The owner an element's comment records; undefined for elements no pod owns (a bridge's sameif pair). */
function ownerOf(comment: string | undefined): { network: string; hostIfname: string } | undefined {
  const [net, hostIfname] = (comment ?? "").split(" ");
  if (!net?.startsWith(NET_TAG) || !hostIfname) return undefined;
  return { network: net.slice(NET_TAG.length), hostIfname };
}

export interface HostPortPod {
  network: string;
  hostIfname: string;
  /**
   * The interface the pod's packets reach the node on and its replies leave by: the bridge
   * in bridge mode, the host veth in routed mode.
   */
  podFacing: string;
  /** Plain addresses (no prefix). */
  ips: string[];
  mappings: readonly PortMapping[];
}

interface Planned {
  map: MapSpec;
  element: SetElement;
  label: string;
}

/** The map elements of a pod's mappings; a mapping names a family its hostIP (if any) picks. */
function plan(p: HostPortPod): Planned[] {
  const comment = ownerComment(p.network, p.hostIfname);
  const out: Planned[] = [];
  for (const m of p.mappings) {
    const families = m.hostIP === undefined ? ([4, 6] as Family[]) : [familyOf(m.hostIP)];
    const specific = m.hostIP !== undefined && m.hostIP !== "0.0.0.0" && m.hostIP !== "::";
    const label = `${m.hostIP ? `${m.hostIP.includes(":") ? `[${m.hostIP}]` : m.hostIP}:` : ""}${m.hostPort}/${m.protocol}`;
    let mapped = false;
    for (const f of families) {
      const podIp = p.ips.find((ip) => familyOf(ip) === f);
      if (!podIp) continue;
      const map = MAPS.find((s) => s.family === f && s.byAddr === specific)!;
      const key = encodeKey(map.key, [...(specific ? [m.hostIP!] : []), m.protocol, String(m.hostPort)]);
      out.push({ map, label, element: { key, data: encodeKey(map.data, [podIp, String(m.containerPort)]), comment } });
      mapped = true;
    }
    if (!mapped) throw new CniError(ErrorCode.InvalidNetworkConfig, `cannot map host port "${label}": the pod has no IPv${families[0]} address`);
  }
  const seen = new Map<string, string>();
  for (const x of out) {
    const k = `${x.map.name}/${Buffer.from(x.element.key).toString("hex")}`;
    if (seen.has(k)) throw conflict(x.label, "it is given twice in runtimeConfig.portMappings");
    seen.set(k, x.label);
  }
  return out;
}

const conflict = (label: string, why: string) => new CniError(ErrorCode.InvalidNetworkConfig, `cannot map host port "${label}": ${why}`);

const sameIfElement = (p: HostPortPod): SetElement => {
  const key = encodeKey(SAMEIF, [p.podFacing, p.podFacing]);
  // A bridge's pair serves every pod on it: no owner, so no pod's DEL removes it.
  return p.podFacing === p.hostIfname ? { key, comment: ownerComment(p.network, p.hostIfname) } : { key };
};

/** ADD: maps the pod's host ports, its undo registered. */
export function attachHostPorts(o: { host: Netlink; network: string; veth: Link; ips: string[]; mappings: readonly PortMapping[]; undo: UndoStack }): void {
  if (o.mappings.length === 0) return;
  // A bridge port's traffic reaches the node on the bridge: that is the pod-facing interface.
  const master = o.host.link(o.veth.index)?.master;
  const podFacing = master ? (o.host.link(master)?.name ?? o.veth.name) : o.veth.name;
  mapHostPorts({ network: o.network, hostIfname: o.veth.name, podFacing, ips: o.ips, mappings: o.mappings });
  o.undo.push(`unmap host ports of "${o.veth.name}"`, () => unmapHostPorts(o.veth.name));
  forgetHostPortFlows(o.mappings);
}

/** Adds the pod's DNAT elements (and the route_localnet that localhost needs); throws a conflict naming the port. */
function mapHostPorts(p: HostPortPod): void {
  if (p.mappings.length === 0) return;
  const planned = plan(p);
  withNftables(`map host ports of "${p.hostIfname}"`, (nft) => {
    ensureTable(nft);
    const changes: SetElemChange[] = MAPS.map((m) => ({ ...ref(m.name), op: "add", exclusive: true, elements: planned.filter((x) => x.map === m).map((x) => x.element) }));
    const comment = ownerComment(p.network, p.hostIfname);
    for (const x of SELF) {
      changes.push({ ...ref(x.name), op: "add", elements: p.ips.filter((ip) => familyOf(ip) === x.family).map((ip) => ({ key: encodeKey(x.type, [ip, ip]), comment })) });
    }
    changes.push({ ...ref("sameif"), op: "add", elements: [sameIfElement(p)] });
    try {
      nft.apply(changes);
    } catch (e) {
      if (!isErrno(e, "EEXIST")) throw e;
      const taken = planned.find((x) => nft.setElement(ref(x.map.name), x.element.key) !== undefined);
      const owner = taken && ownerOf(nft.setElement(ref(taken.map.name), taken.element.key)?.comment);
      throw conflict(taken?.label ?? p.mappings.map((m) => `${m.hostPort}/${m.protocol}`).join(", "), `already mapped${owner ? ` to the pod of host veth "${owner.hostIfname}" (network "${owner.network}")` : ""}`);
    }
  });
  // Packets from 127.0.0.1 may only be routed out of an interface that allows it (and
  // then need the guard: localnet.ts).
  if (p.mappings.some((m) => m.hostIP === undefined || familyOf(m.hostIP) === 4) && p.ips.some((ip) => familyOf(ip) === 4)) openLocalnet(p.podFacing);
}

/** CHECK: every mapping of the pod is in the table, to the pod's address; throws a CniError naming the first missing. */
export function checkHostPorts(p: Omit<HostPortPod, "podFacing">): void {
  if (p.mappings.length === 0) return;
  const planned = plan({ ...p, podFacing: p.hostIfname });
  withNftables(`check host ports of "${p.hostIfname}"`, (nft) => {
    for (const x of planned) {
      const e = nft.setElement(ref(x.map.name), x.element.key);
      const same = e?.data && Buffer.from(e.data).equals(Buffer.from(x.element.data!));
      if (!same) throw new CniError(ErrorCode.Internal, `host port "${x.label}" of "${p.hostIfname}" is missing in table ${FAMILY} ${HOSTPORT_TABLE} (map ${x.map.name})`);
    }
  });
}

/** Every element (maps and masquerade sets) a host veth owns, by the comments; none without the table. */
function ownedElements(nft: Nftables, keep: (owner: { network: string; hostIfname: string }) => boolean): SetElemChange[] {
  if (!nft.table(FAMILY, HOSTPORT_TABLE)) return [];
  return OWNED_SETS.map((set) => ({
    ...ref(set),
    op: "del" as const,
    elements: nft.setElements(ref(set)).filter((e) => {
      const owner = ownerOf(e.comment);
      return owner !== undefined && keep(owner);
    }).map((e) => ({ key: e.key })),
  }));
}

const ATTEMPTS = 3;

function removeWhere(what: string, keep: (owner: { network: string; hostIfname: string }) => boolean): void {
  withNftables(what, (nft) => {
    for (let attempt = 1; ; attempt++) {
      try {
        nft.apply(ownedElements(nft, keep));
        return;
      } catch (e) {
        // ENOENT: another call removed one meanwhile (GC racing DEL). List again.
        if (!isErrno(e, "ENOENT") || attempt >= ATTEMPTS) throw e;
      }
    }
  });
}

/** Removes a pod's elements (DEL, rollback, GC); nothing to do is not an error. */
export function unmapHostPorts(hostIfname: string): void {
  removeWhere(`unmap host ports of "${hostIfname}"`, (o) => o.hostIfname === hostIfname);
}



/** The host veths with elements, and their networks (for GC); `family`: only those with host ports of that family. */
export function hostPortOwners(family?: Family): { network: string; hostIfname: string }[] {
  return withNftables("list host port owners", (nft) => {
    const found = new Map<string, { network: string; hostIfname: string }>();
    if (!nft.table(FAMILY, HOSTPORT_TABLE)) return [];
    for (const m of MAPS) {
      if (family !== undefined && m.family !== family) continue;
      for (const e of nft.setElements(ref(m.name))) {
        const o = ownerOf(e.comment);
        if (o) found.set(o.hostIfname, o);
      }
    }
    return [...found.values()];
  });
}
