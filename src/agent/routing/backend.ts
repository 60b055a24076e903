// The seam between the reconciler and a routing backend: how this node reaches the pod CIDRs
// of the others (Flannel's backend registry is the model; README.md says how to add one).
// A backend is told which peers and pod CIDRs were admitted (src/agent/pod-cidrs.ts decides
// that, the same for every backend), owns a set of kernel objects recognised by its own rule,
// and says how many bytes of encapsulation it adds so the pod MTU leaves room for them.
import type { FlagTable } from "../../base/flags.ts";
import type { Netlink, RouteInfo } from "../../kernel/index.ts";
import type { Family } from "../../net/ip.ts";
import { normalizeCIDR } from "../../net/cidr.ts";

/** Another node as a backend sees it: only admitted pod CIDRs, at most one per family. */
export interface Peer {
  name: string;
  /** InternalIP addresses, in manifest order: the underlay endpoints. */
  internalIPs: string[];
  podCIDRs: string[];
  /**
   * What the peer's routing backend published for the others (its Node's MncniRouting status
   * condition; src/cluster/node-routing.ts), by key; absent when it published nothing (an
   * older agent, a source without it). Each backend reads its own keys.
   */
  published?: Readonly<Record<string, string>>;
}

/** An address of this node (the netlink dump's shape). */
export interface LocalAddr {
  /** The link holding it (the underlay device of a tunnel). */
  index?: number;
  family: Family;
  cidr: string;
  address: string;
  prefixLen: number;
  scope: number;
}

const RT_SCOPE_HOST = 254;

/** Subnets of this node's addresses (not host-scoped, not /32 or /128): what is directly connected. */
export function connectedSubnets(addrs: readonly LocalAddr[]): string[] {
  return addrs.filter((a) => a.scope !== RT_SCOPE_HOST && a.prefixLen < (a.family === 4 ? 32 : 128)).map((a) => normalizeCIDR(a.cidr));
}

export interface RoutingInput {
  self: string;
  /** Every other node, sorted by name; those without admitted pod CIDRs included (empty list). */
  peers: Peer[];
  /** This node's addresses: on-link checks, the underlay endpoint. */
  localAddrs: LocalAddr[];
  /** This node's InternalIPs: the local end of its tunnels (VXLAN). */
  selfIPs?: string[];
  /** Pod address families in use (this node's pod CIDRs and the cluster CIDRs): a device per family. */
  families?: Family[];
}

/**
 * The kernel calls backends may make: routes (host-gw), and the link, neighbour, FDB and
 * offload calls of a device backend (VXLAN). The agent passes the whole Netlink.
 */
export type RoutingKernel = Pick<
  Netlink,
  "routes" | "addRoute" | "replaceRoute" | "delRoute" | "addrs" | "links" | "link" | "addVxlan" | "setLink" | "delLink"
  | "addNeigh" | "delNeigh" | "neighs" | "txChecksumOn" | "setTxChecksum"
>;

export interface RoutingReport {
  writes: number;
  /** What changed, for logs. */
  changes: string[];
  /** Kernel calls that failed, each a complete sentence. */
  errors: string[];
  /** Peers that cannot be served (not on-link, no address of the family, ...). */
  problems: string[];
  /** Routes to other nodes' pod CIDRs this backend has in the kernel after the pass. */
  routes: number;
  /** How each peer's pod CIDRs are reached, by node name: "direct" (host-gw) or "tunnel" (VXLAN). */
  paths: Map<string, PeerPath>;
  /**
   * What this node publishes for its peers on its Node, by key (a backend's keys start with
   * its name): the peers' backends read it back in `Peer.published`. Absent: nothing.
   */
  published?: Record<string, string>;
}

export type PeerPath = "direct" | "tunnel";

export interface RoutingBackend {
  /** The --routing value that selects it. */
  readonly name: string;
  /** Bytes each pod packet gains on the underlay (0 for host-gw; VXLAN: 50 over IPv4, 70 over IPv6). */
  mtuOverhead(underlay: Family): number;
  /** Whether a kernel route is this backend's: the only routes its passes may change or delete. */
  ownsRoute(r: RouteInfo): boolean;
  /** One pass: desired objects from the input, diffed against the kernel, differences applied. */
  reconcile(input: RoutingInput, kernel: RoutingKernel): RoutingReport;
  /** Deletes every object it owns: the node now uses another backend. */
  remove(kernel: RoutingKernel): RoutingReport;
  /** Backends it is composed of (auto: host-gw and VXLAN): their objects are its own, never removed as another backend's. */
  readonly parts?: readonly RoutingBackend[];
}

/** The backends that own kernel objects themselves: composites (auto) stand for their parts, each listed once. */
export function leafBackends(backends: Iterable<RoutingBackend>): RoutingBackend[] {
  const leaves = (b: RoutingBackend): RoutingBackend[] => (b.parts ? b.parts.flatMap(leaves) : [b]);
  return [...new Set([...backends].flatMap(leaves))];
}

export const emptyReport = (): RoutingReport => ({ writes: 0, changes: [], errors: [], problems: [], routes: 0, paths: new Map() });

/**
 * A backend's own settings: the agent's flags it adds (the config file's keys are their
 * camelCase names), parsed and checked by the backend, so the agent's config carries no
 * backend-specific field.
 */
export interface BackendSettings<S, F extends FlagTable = FlagTable> {
  readonly flags: F;
  /** The settings from the raw values by config key (undefined: not given); throws an Error naming the key. */
  parse(raw: (key: string) => unknown): S;
}

/** An integer setting between min and max (a flag's string or a config file's number); the error names the key. */
export function intSetting(key: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v === "boolean" || v === "" || !Number.isInteger(n) || n < min || n > max) throw new Error(`cannot use ${key} ${JSON.stringify(String(v))}: must be an integer between ${min} and ${max}`);
  return n;
}
