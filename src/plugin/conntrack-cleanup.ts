// Conntrack cleanup: a pod's addresses must not inherit the flows of the pod that had them
// before (a UDP "connection" lives as long as packets keep coming, so a client that keeps
// sending would keep reaching a dead pod's DNAT target, or a new pod would get replies it
// never asked for). ADD forgets the entries of the addresses it was given, DEL those of
// the addresses it releases, in the node's namespace, over ctnetlink.
// Forgetting walks the kernel's whole conntrack table (src/kernel/conntrack.ts): 6 ms and up
// on a node that tracks anything, more than the rest of an ADD. A resident server (the
// agent, `mncni serve`) therefore forgets after the call is answered and before it takes the
// next one (deferConntrackCleanup): the pod's processes start long after its sandbox's ADD
// returns, and no other served call runs in between. A plugin process forgets at once.
// ADD forgets only addresses whose previous holder's flows may remain: mncni's IPAM marks an
// address from its reservation until a DEL that forgot its flows released it (flow marks,
// src/ipam/README.md), so the common ADD (a fresh address, or one a DEL cleaned) walks
// nothing; a holder that never got its DEL (crash, GC, state from elsewhere) leaves its
// mark, and its address's next ADD walks. A delegated IPAM keeps no marks: always forget.
import { readText, stat } from "../sys/files.ts";
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { CallContext } from "../cni/plugin-spec.ts";
import { Conntrack, IPPROTO, Netlink, RT_SCOPE, type CtView } from "../kernel/index.ts";
import type { PortMapping } from "./capabilities.ts";
import { addrOf, parseIP } from "../net/ip.ts";

export function forgetConntrack(addrs: string[]): void {
  if (addrs.length === 0) return;
  const mine = addrs.map((a) => parseIP(a).bytes);
  forget(`entries of "${addrs.join(", ")}"`, (v) => mine.some((a) => v.involves(a)));
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
  const hits = (v: CtView) => v.protocol === IPPROTO.udp && udp.some((m) => m.hostPort === v.dport && (!m.hostIP || m.hostIP === "0.0.0.0" || m.hostIP === "::" || m.hostIP === v.origDst()));
  forget(`entries of host ports ${udp.map((m) => `${m.hostPort}/udp`).join(", ")}`, hits);
}

/** What a resident server's call left to forget once it is answered; undefined: forget at once. */
let deferred: { what: string[]; matches: ((v: CtView) => boolean)[]; then: (() => void)[] } | undefined;

/**
 * Runs `fn` once everything asked so far is forgotten: now in a plugin process (its
 * forgetting is done, or threw), after the walk in a server (and not at all if the walk
 * fails). What `fn` records is a promise that the flows are gone, so it may never run early.
 */
export function whenForgotten(fn: () => void): void {
  if (deferred) deferred.then.push(fn);
  else runQuietly(fn);
}

/** A record that could not be written only makes a later ADD forget again. */
function runQuietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // see above
  }
}

function forget(what: string, match: (v: CtView) => boolean): void {
  if (deferred) {
    deferred.what.push(what);
    deferred.matches.push(match);
    return;
  }
  withConntrack(`delete conntrack ${what}`, (ct) => ct.deleteWhere(undefined, match));
}

/**
 * Makes this process (a resident server) defer forgetting to the returned function, which the
 * server calls once each call is answered: everything the call asked for, in one walk.
 */
export function deferConntrackCleanup(): () => void {
  deferred ??= { what: [], matches: [], then: [] };
  return () => {
    const d = deferred;
    if (!d || (d.matches.length === 0 && d.then.length === 0)) return;
    deferred = { what: [], matches: [], then: [] };
    const { matches } = d;
    if (matches.length) withConntrack(`delete conntrack ${d.what.join("; ")}`, (ct) => ct.deleteWhere(undefined, (v) => matches.some((m) => m(v))));
    d.then.forEach(runQuietly);
  };
}

/**
 * One ctnetlink socket per namespace for the process, left open (a server handles many
 * calls; closing a NETLINK_NETFILTER socket can wait for an RCU grace period, see
 * nft-socket.ts).
 */
let cached: { netns: bigint; ct: Conntrack } | undefined;

/**
 * False when this namespace tracks no connection at all (conntrack unused here, or not even
 * loaded): nothing to forget, and a dump would cost ~10 ms for nothing — the kernel walks its
 * whole hash table (262,144 buckets here, shared by every namespace) to answer even an empty
 * one. The count is per network namespace.
 */
function anythingTracked(): boolean {
  try {
    return readText("/proc/sys/net/netfilter/nf_conntrack_count").trim() !== "0";
  } catch {
    return false;
  }
}

function withConntrack(what: string, fn: (ct: Conntrack) => unknown): void {
  if (!anythingTracked()) return;
  try {
    const netns = stat("/proc/thread-self/ns/net").ino;
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
