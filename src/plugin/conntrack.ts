// Conntrack cleanup: a pod's addresses must not inherit the flows of the pod that had them
// before (a UDP "connection" lives as long as packets keep coming, so a client that keeps
// sending would keep reaching a dead pod's DNAT target, or a new pod would get replies it
// never asked for). ADD forgets the entries of the addresses it was given, DEL those of
// the addresses it releases, in the node's namespace, over ctnetlink.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { Conntrack, Netlink, RT_SCOPE } from "../kernel/index.ts";
import { addrOf } from "../net/ip.ts";

export function forgetConntrack(addrs: string[]): void {
  if (addrs.length === 0) return;
  let ct: Conntrack | undefined;
  try {
    ct = Conntrack.open();
    ct.deleteByAddress(addrs);
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot delete conntrack entries of "${addrs.join(", ")}": ${(e as Error).message}`, "", { cause: e });
  } finally {
    ct?.close();
  }
}

/**
 * The addresses a DEL releases: prevResult's, or, without one, those on the pod's interface
 * while its namespace still exists. None when neither is there (nothing to go by).
 */
export function addressesAtDel(ctx: CallContext): string[] {
  const prev = ctx.conf.prevResult?.ips?.map((i) => addrOf(i.address));
  if (prev?.length) return prev;
  if (!ctx.env.netns) return [];
  let pod: Netlink | undefined;
  try {
    pod = Netlink.open(ctx.env.netns);
    const link = pod.link(ctx.env.ifname);
    return link ? pod.addrs({ index: link.index }).filter((a) => a.scope === RT_SCOPE.UNIVERSE).map((a) => a.address) : [];
  } catch {
    return []; // the namespace is gone: so are the pod's own sockets
  } finally {
    pod?.close();
  }
}
