// What varies between bridge and routed mode. The shared mechanism (veth, IPAM, addresses,
// routes, rollback) lives in attach.ts / detach.ts / verify.ts and asks the mode only this.
import type { Interface, IPConfig } from "../cni/types.ts";
import type { Link, Netlink } from "../kernel/index.ts";
import type { PluginConf } from "./netconf.ts";
import type { UndoStack } from "./undo.ts";

export type Family = 4 | 6;

export interface HostSide {
  conf: PluginConf;
  host: Netlink;
  undo: UndoStack;
  /** Set by a mode's prepareHost for its wireHostVeth (bridge mode: the bridge). */
  bridge?: Link;
}

export interface Gateway {
  /** The next hop the container's routes use for this family. */
  gw: string;
  /** Routes via gw need the onlink flag (the gateway is not in the pod's subnet). */
  onlink: boolean;
  /** A permanent neighbour entry for gw inside the pod (no ARP/ND for the gateway). */
  neighMac?: string;
}

export interface ModePolicy {
  /** Host interfaces reported before the veth (the bridge), after making sure they exist. */
  prepareHost(h: HostSide, ips: IPConfig[]): Interface[];
  /** Wires the host end of a fresh veth (enslave to the bridge, or host routes). */
  wireHostVeth(h: HostSide, veth: Link, ips: IPConfig[]): void;
  /** The address as configured inside the pod (routed mode uses /32 and /128). */
  podAddress(ip: IPConfig): string;
  gateway(family: Family, ip: IPConfig, hostVeth: Link): Gateway;
  /** CHECK of the host side; throws a CniError describing the first problem. */
  checkHost(h: { conf: PluginConf; host: Netlink }, veth: Link, ips: IPConfig[]): void;
  /** STATUS: throws CniError 50 when ADD cannot be served. */
  status(h: { conf: PluginConf; host: Netlink }): void;
}
