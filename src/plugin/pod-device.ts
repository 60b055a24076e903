// The pod's link to the host, created by one function for both modes: a veth pair, or a
// netkit pair where the config asks for it and the mode offers it. The pod end is created
// directly in the pod's namespace; the host end carries the derived name and the alias
// that DEL and GC find it by, whatever its kind.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { isErrno, type Link, type Netlink } from "../kernel/index.ts";
import { phase } from "../base/phases.ts";
import { hostVethAlias, hostVethName } from "./hostveth.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf, PodDevice } from "./netconf.ts";
import type { UndoStack } from "./undo.ts";

/**
 * What stands for the MAC of a pod device that has none (netkit L3) where one is recorded:
 * the anti-spoofing port comment is "net=NAME MAC IP...", read back by position at DEL.
 */
export const NO_MAC = "00:00:00:00:00:00";

export function createPodDevice(ctx: CallContext, conf: PluginConf, mode: ModePolicy, host: Netlink, podNetnsFd: number, undo: UndoStack): Link {
  const network = ctx.conf.name;
  const { containerId, ifname } = ctx.env;
  const name = hostVethName(network, containerId, ifname);
  const pair = { name, peerName: ifname, peerNetnsFd: podNetnsFd, mtu: conf.mtu, peerMac: conf.mac };
  const netkitMode = conf.podDevice === "netkit" ? mode.netkitMode : undefined;
  let kind: PodDevice = netkitMode ? "netkit" : "veth";
  const add = () => {
    if (kind === "veth" || !netkitMode) return host.addVeth(pair);
    try {
      host.addNetkit({ ...pair, mode: netkitMode });
    } catch (e) {
      // A kernel built without netkit (CONFIG_NETKIT unset, or older than 6.7) does not
      // know the kind: fall back to veth, visibly (the invocation log's phases name it).
      if (!isErrno(e, "EOPNOTSUPP")) throw e;
      phase("netkit-unavailable");
      kind = "veth";
      host.addVeth(pair);
    }
  };
  try {
    add();
  } catch (e) {
    // A host end under our derived name can only be a leftover of this same attachment
    // (an ADD killed before it could roll back): replace it.
    if (!isErrno(e, "EEXIST") || !host.link(name)) throw e;
    host.delLink(name);
    add();
  }
  undo.push(`delete host ${kind} "${name}"`, () => host.delLink(name));
  phase(kind);
  const dev = host.link(name);
  if (!dev) throw new CniError(ErrorCode.IOFailure, `cannot find host ${kind} "${name}" after creating it`);
  host.setLink(dev.index, { alias: hostVethAlias(network, containerId, ifname) });
  return dev;
}
