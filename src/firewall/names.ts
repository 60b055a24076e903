// Every nftables table, chain and set mncni owns, named once. The writers (the policy engine,
// masquerade, anti-spoofing, hostPort, ipMasq, the hold), uninstall, the agent's ruleset
// reader and obs/ take the names from here, so a layout change is one edit that every reader
// follows instead of a string that one of them re-spells.
import type { NftFamily, SetRef } from "../kernel/index.ts";

export interface TableName {
  family: NftFamily;
  name: string;
}

/** `inet mncni-policy`: NetworkPolicy and ClusterNetworkPolicy (agent). */
export const POLICY = {
  family: "inet",
  name: "mncni-policy",
  /** Chain holding the marker rule: its comment carries the structure hash. */
  markerChain: "marker",
  markerPrefix: "mncni-policy ruleset ",
  /** Set whose one element's comment records the fingerprint of the chains as the kernel has them. */
  stateSet: "engine_state",
} as const satisfies TableName & Record<string, string>;

/**
 * `inet mncni-services`: the Service proxy (agent, `--service-proxy`), written through the
 * owned-table engine like policy. Chain and set names are built by the proxy's compiler
 * (src/agent/services/); the ones readers look for are here.
 */
export const SERVICES = {
  family: "inet",
  name: "mncni-services",
  markerChain: "marker",
  markerPrefix: "mncni-services ruleset ",
  stateSet: "engine_state",
  /** Service IP . protocol . port -> what to do with it, per family. */
  serviceIps: (f: 4 | 6) => `service-ips-${f}`,
  /** protocol . nodePort -> what to do with it, per family. */
  nodePorts: (f: 4 | 6) => `service-nodeports-${f}`,
  /** The endpoints: service key . slot -> endpoint address . port ("ip": by Service IP, "np": by nodePort). */
  endpoints: (f: 4 | 6, form: "ip" | "np") => `endpoints-${form}-${f}`,
  /** Service keys without endpoints: rejected (or dropped) instead of timing out. */
  noEndpoints: (f: 4 | 6, form: "ip" | "np") => `no-endpoints-${form}-${f}`,
  /**
   * The ct mark bit of connections to masquerade (from outside the cluster, hairpin): the
   * ct mark, not the packet mark, which the endpoint choice uses as its scratch register.
   */
  masqueradeCtMark: 0x00800000,
} as const;

/** `inet mncni-hold`: pods held (dropped both ways) until their policy is programmed (agent creates, plugin fills). */
export const HOLD = {
  family: "inet",
  name: "mncni-hold",
  chain: "forward",
  layout: "mncni hold v1",
  set: (f: 4 | 6) => `held_${f}`,
} as const;
export const heldSet = (f: 4 | 6): SetRef => ({ family: HOLD.family, table: HOLD.name, set: HOLD.set(f) });

/** `inet mncni`: egress masquerade and forward acceptance (agent). */
export const MASQUERADE = {
  family: "inet",
  name: "mncni",
  chains: ["postrouting", "forward"],
  /** The table comment: this prefix and the hash of its body. */
  layoutPrefix: "mncni masquerade ",
  /** Comment of the accept rules the agent inserts into foreign forward chains whose policy is drop. */
  foreignPrefix: "mncni-agent forward-accept ",
} as const;

/** Anti-spoofing (plugin): one table per mode, of the mode's family (bridge or inet). */
export const ANTISPOOF = {
  name: "mncni-antispoof",
  /** netdev: an earlier layout's, still recognised. */
  families: ["bridge", "inet", "netdev"] as const,
  chain: "prerouting",
  ports: "ports",
  macs: "macs",
  addr: (f: 4 | 6) => `addr${f}`,
} as const;

/** `inet mncni-hostport`: hostPort DNAT (plugin). */
export const HOSTPORT = {
  family: "inet",
  name: "mncni-hostport",
  layout: "mncni hostport v1",
} as const;

/** `inet mncni-localnet`: drops what reaches 127.0.0.0/8 on any interface but lo and was not DNATed, before hostPort turns route_localnet on (plugin). */
export const LOCALNET = {
  family: "inet",
  name: "mncni-localnet",
  chain: "input",
  layout: "mncni localnet guard v1",
} as const;

/** The plugin's ipMasq for standalone hosts: one `inet` table per network, this prefix and a hash of the network's name. */
export const IPMASQ = { family: "inet", prefix: "mncni-masq-" } as const;

/** Whether mncni owns this table (uninstall removes exactly these). */
export function ownsTable(family: string, name: string): boolean {
  if (family === POLICY.family && name === POLICY.name) return true;
  if (family === SERVICES.family && name === SERVICES.name) return true;
  if (family === HOLD.family && name === HOLD.name) return true;
  if (family === MASQUERADE.family && name === MASQUERADE.name) return true;
  if (family === HOSTPORT.family && name === HOSTPORT.name) return true;
  if (family === LOCALNET.family && name === LOCALNET.name) return true;
  if ((ANTISPOOF.families as readonly string[]).includes(family) && name === ANTISPOOF.name) return true;
  return family === IPMASQ.family && name.startsWith(IPMASQ.prefix);
}

/** `family name`, as nft scripts name a table. */
export const tableRef = (t: TableName) => `${t.family} ${t.name}`;
