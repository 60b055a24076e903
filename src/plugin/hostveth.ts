// Host-side veth names (of a netkit host end too) are derived, not stored: DEL and GC can find the interface of an
// attachment without prevResult, the namespace, or any state file.
import type { Link, Netlink } from "../kernel/index.ts";
import { sha256Hex } from "../sys/hash.ts";

export const HOST_VETH_PREFIX = "mnc";

/** "mnc" + 12 hex chars of sha256(network/containerID/ifname): stable, unique, 15 bytes. */
export function hostVethName(network: string, containerId: string, ifname: string): string {
  const h = sha256Hex(`${network}/${containerId}/${ifname}`);
  return HOST_VETH_PREFIX + h.slice(0, 12);
}

/** The alias written on the host veth so GC can tell which attachment it belongs to. */
export function hostVethAlias(network: string, containerId: string, ifname: string): string {
  return `mncni/${network}/${containerId}/${ifname}`;
}

export function parseHostVethAlias(alias: string | undefined): { network: string; containerId: string; ifname: string } | undefined {
  if (!alias?.startsWith("mncni/")) return undefined;
  const [, network, containerId, ifname] = alias.split("/");
  if (!network || !containerId || !ifname) return undefined;
  return { network, containerId, ifname };
}

/** The host veths of a network on this host, found by their alias (what GC and ipMasq's release go by). */
export function hostVethsOf(host: Netlink, network: string): Link[] {
  return host.links().filter((l) => l.name.startsWith(HOST_VETH_PREFIX) && (l.kind === "veth" || l.kind === "netkit") && parseHostVethAlias(l.alias)?.network === network);
}
