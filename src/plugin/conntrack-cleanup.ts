// Conntrack cleanup: a pod's addresses must not inherit the flows of the pod that had them
// before (a UDP "connection" lives as long as packets keep coming, so a client that keeps
// sending would keep reaching a dead pod's DNAT target, or a new pod would get replies it
// never asked for). ADD forgets the entries of the addresses it was given, DEL those of
// the addresses it releases, in the node's namespace, over ctnetlink.
import { readFileSync, statSync } from "node:fs";
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { Conntrack, IPPROTO, Netlink, RT_SCOPE, type CtEntry } from "../kernel/index.ts";
import type { PortMapping } from "./capabilities.ts";
import { addrOf } from "../net/ip.ts";

export function forgetConntrack(addrs: string[]): void {
  if (addrs.length === 0) return;
  withConntrack(`delete conntrack entries of "${addrs.join(", ")}"`, (ct) => ct.deleteByAddress(addrs));
}

/**
 * UDP flows to a host port that was just mapped: a client that kept sending while nothing
 * was mapped (or while another pod was) has an entry without (or with the old) DNAT, which
 * its next datagrams keep following; deleting it lets them meet the new mapping (what the
 * reference portmap does for UDP).
 */
export function forgetHostPortFlows(mappings: readonly PortMapping[]): void {
  const udp = mappings.filter((m) => m.protocol === "udp");
  if (udp.length === 0) return;
  const hits = (e: CtEntry) => e.protocol === IPPROTO.udp && udp.some((m) => m.hostPort === e.orig.dport && (!m.hostIP || m.hostIP === "0.0.0.0" || m.hostIP === "::" || m.hostIP === e.orig.dst));
  withConntrack(`delete conntrack entries of host ports ${udp.map((m) => `${m.hostPort}/udp`).join(", ")}`, (ct) => {
    for (const f of [4, 6] as const) ct.deleteWhere(f, hits);
  });
}

/**
 * One ctnetlink socket per namespace for the process, left open (a server handles many
 * calls; closing a NETLINK_NETFILTER socket can wait for an RCU grace period, see
 * nft-socket.ts).
 */
let cached: { netns: number; ct: Conntrack } | undefined;

/**
 * False when this namespace tracks no connection at all (conntrack unused here, or not even
 * loaded): nothing to forget, and a dump would cost ~10 ms for nothing — the kernel walks its
 * whole hash table (262,144 buckets here, shared by every namespace) to answer even an empty
 * one. The count is per network namespace.
 */
function anythingTracked(): boolean {
  try {
    return readFileSync("/proc/sys/net/netfilter/nf_conntrack_count", "utf8").trim() !== "0";
  } catch {
    return false;
  }
}

function withConntrack(what: string, fn: (ct: Conntrack) => unknown): void {
  if (!anythingTracked()) return;
  try {
    const netns = statSync("/proc/thread-self/ns/net").ino;
    if (cached?.netns !== netns) {
      cached?.ct.close();
      cached = { netns, ct: Conntrack.open() };
    }
    fn(cached.ct);
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot ${what}: ${(e as Error).message}`, "", { cause: e });
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
