// DEL, shared by both modes. Idempotent: everything already gone counts as done, and it
// needs neither the namespace nor prevResult (the host veth name is derived).
import type { CallContext } from "../cni/plugin-spec.ts";
import { isErrno, Netlink } from "../kernel/index.ts";
import { antiSpoofFor } from "./antispoof.ts";
import { removeBandwidth } from "./bandwidth.ts";
import { addressesAtDel, forgetConntrack } from "./conntrack-cleanup.ts";
import { unmapHostPorts } from "./host-port.ts";
import { forgetNeighbours } from "./neighbours.ts";
import { hostVethName } from "./hostveth.ts";
import { releasePod } from "./policy-hold.ts";
import { ipamClient } from "./ipam-client.ts";
import { releaseMasqueradeIfUnused } from "./ip-masq.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";

export async function detach(ctx: CallContext, conf: PluginConf, mode: ModePolicy): Promise<void> {
  const name = hostVethName(ctx.conf.name, ctx.env.containerId, ctx.env.ifname);
  // Anti-spoofing first: the kernel frees the deleted set elements while the veth is being
  // deleted, instead of making this process wait for it on exit.
  if (conf.antiSpoofing) antiSpoofFor(mode.antiSpoof).detach(name);
  // The built-in capabilities: the pod's addresses read while its interface is there.
  const podAddrs = addressesAtDel(ctx);
  unmapHostPorts(name);
  const host = Netlink.open();
  try {
    if (ctx.later) {
      // In a server: unplug now (off the bridge, down: the pod is cut off before its
      // address is released), delete off the main thread; the call is answered after.
      const veth = host.link(name);
      if (veth) {
        try {
          host.setLink(veth.index, { up: false, ...(veth.master ? { master: 0 } : {}) });
          ctx.later.deleteLink(veth.index);
        } catch (e) {
          // Going already: the pod's namespace was deleted and the kernel is tearing the pair down.
          if (!isErrno(e, "ENODEV", "ENOENT")) throw e;
        }
      }
    } else {
      // Deleting the host end removes the pod end (and routed mode's host routes) with it.
      try {
        host.delLink(name);
      } catch (e) {
        if (!isErrno(e, "ENODEV", "ENOENT")) throw e;
      }
    }
    removeBandwidth(host, name);
    // The pod is cut off: its flows go before its addresses can be handed out again, then
    // its neighbour entries (after the flows, which could otherwise make new ones).
    forgetConntrack(podAddrs);
    forgetNeighbours(host, podAddrs);
  } finally {
    host.close();
  }
  // A pod held (no agent answered its ADD) and deleted before the agent programmed it: its
  // addresses leave the hold with it, before IPAM can hand them to another pod.
  if (conf.policyHold && podAddrs.length) releasePod(podAddrs);
  await ipamClient(ctx).del();
  // The veth being deleted (off the main thread when served) is not a user any more.
  if (conf.ipMasq) releaseMasqueradeIfUnused(ctx.conf.name, name);
}
