// DEL, shared by both modes. Idempotent: everything already gone counts as done, and it
// needs neither the namespace nor prevResult (the host veth name is derived). The per-pod
// features (features/list.ts) clean up at three points: before the host veth goes, once
// the pod is cut off, and once IPAM released its addresses.
import type { CallContext } from "../cni/plugin-spec.ts";
import { isErrno, Netlink } from "../kernel/index.ts";
import { addressesAtDel } from "./conntrack-cleanup.ts";
import { hostVethName } from "./hostveth.ts";
import { ipamClient } from "./ipam-client.ts";
import type { ConfiguredFeature, Detaching } from "./feature.ts";
import type { ModePolicy } from "./mode.ts";
import type { PluginConf } from "./netconf.ts";

export async function detach(ctx: CallContext, conf: PluginConf, mode: ModePolicy, features: readonly ConfiguredFeature[]): Promise<void> {
  const name = hostVethName(ctx.conf.name, ctx.env.containerId, ctx.env.ifname);
  const host = Netlink.open();
  try {
    // The pod's addresses, read while its interface is there.
    const detaching: Detaching = { network: ctx.conf.name, bridge: conf.bridge, mode, host, hostIfname: name, addrs: addressesAtDel(ctx) };
    for (const f of features) f.detach?.(detaching);
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
    for (const f of features) f.detached?.(detaching);
    const ipam = ipamClient(ctx);
    const released = await ipam.del();
    const flowsForgotten = ipam.flowsForgotten;
    const forgotten = released?.filter((a) => detaching.addrs.includes(a)) ?? [];
    for (const f of features) f.released?.({ ...detaching, flowsForgotten: flowsForgotten && (() => flowsForgotten(forgotten)) });
  } finally {
    host.close();
  }
}
