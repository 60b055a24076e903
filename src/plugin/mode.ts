// What varies between bridge and routed mode. The shared mechanism (veth, IPAM, addresses,
// routes, rollback, GC) lives in attach.ts / detach.ts / verify.ts / gc.ts, the per-pod
// features in features/ (each mode may replace one), and asks the mode only this; the
// modes themselves are listed in modes.ts.
import type { Interface, IPConfig } from "../cni/types.ts";
import type { Link, Netlink } from "../kernel/index.ts";
import type { FeatureOverrides, ModeFacts } from "./feature.ts";
import type { PluginConf } from "./netconf.ts";
import type { UndoStack } from "./undo.ts";
import type { Family } from "../net/ip.ts";

export type { Family };

/** What an ADD gives a mode to work on the host with. */
export interface HostSide {
  conf: PluginConf;
  host: Netlink;
  undo: UndoStack;
}

/** The host made ready for one attachment (by ModePolicy.prepareHost). */
export interface PreparedHost {
  /** Host interfaces reported before the veth (the bridge). */
  interfaces: Interface[];
  /** Wires the host end of the fresh veth (enslave to the bridge, or host routes). */
  wireHostVeth(veth: Link, ips: IPConfig[]): void;
}

export interface Gateway {
  /** The next hop the container's routes use for this family. */
  gw: string;
  /** Routes via gw need the onlink flag (the gateway is not in the pod's subnet). */
  onlink: boolean;
  /** A permanent neighbour entry for gw inside the pod (no ARP/ND for the gateway). */
  neighMac?: string;
}

export interface ModePolicy extends ModeFacts {
  /** Makes sure what the mode needs on the host exists (the bridge and its gateway addresses). */
  prepareHost(h: HostSide, ips: IPConfig[]): PreparedHost;
  /** The address as configured inside the pod (routed mode uses /32 and /128). */
  podAddress(ip: IPConfig): string;
  gateway(family: Family, ip: IPConfig, hostVeth: Link): Gateway;
  /** CHECK of the host side; throws a CniError describing the first problem. */
  checkHost(h: { conf: PluginConf; host: Netlink }, veth: Link, ips: IPConfig[]): void;
  /** STATUS: throws CniError 50 when ADD cannot be served. */
  status(h: { conf: PluginConf; host: Netlink }): void;
  /** The netkit mode this mode's pods get with `podDevice: netkit`; absent: netkit not offered. */
  netkitMode?: "l2" | "l3";
  /** Per-pod features this mode does its own way, by name (features/list.ts); null: not offered. */
  features?: FeatureOverrides;
}
