// The `bandwidth` capability, shaped on the host side of the pod's veth, as the reference
// bandwidth plugin shapes it (over rtnetlink here, no `tc`):
// - traffic to the pod (ingressRate) leaves the node through the host veth: a tbf root
//   qdisc on it;
// - traffic from the pod (egressRate) is what the host veth receives, which a qdisc cannot
//   delay: an ingress qdisc on the host veth redirects all of it to an ifb device, whose
//   tbf shapes it before it goes on into the stack.
// Both go with the veth, except the ifb: DEL, rollback and GC delete it by its derived name.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { isErrno, type Link, type Netlink } from "../kernel/index.ts";
import type { Bandwidth } from "./capabilities.ts";
import { HOST_VETH_PREFIX } from "./hostveth.ts";
import type { UndoStack } from "./undo.ts";

const IFB_PREFIX = "mnb";
/** How long a full queue may delay a packet before tbf drops (the reference plugin's 25 ms). */
const LATENCY_S = 0.025;

/** The ifb of a host veth: the veth's name with another prefix. */
const ifbName = (hostIfname: string) => IFB_PREFIX + hostIfname.slice(HOST_VETH_PREFIX.length);
/** And back: the host veth an ifb belongs to. */
const vethOfIfb = (ifb: string) => HOST_VETH_PREFIX + ifb.slice(IFB_PREFIX.length);

function tbf(rateBits: number, burstBits: number) {
  const rate = Math.max(1, Math.floor(rateBits / 8));
  const burst = Math.max(1, Math.floor(burstBits / 8));
  return { rate, burst, limit: Math.min(0xffffffff, Math.floor(rate * LATENCY_S) + burst) };
}

export function shapeBandwidth(host: Netlink, network: string, veth: Link, bw: Bandwidth | undefined, undo: UndoStack): void {
  if (!bw) return;
  try {
    if (bw.ingressRate && bw.ingressBurst) host.addTbf({ index: veth.index, ...tbf(bw.ingressRate, bw.ingressBurst) });
    if (bw.egressRate && bw.egressBurst) {
      const name = ifbName(veth.name);
      host.addIfb({ name, mtu: veth.mtu });
      undo.push(`delete ifb "${name}"`, () => host.delLink(name));
      const ifb = host.link(name);
      if (!ifb) throw new Error(`ifb "${name}" missing after creating it`);
      host.setLink(ifb.index, { up: true, alias: ifbAlias(network) });
      host.addTbf({ index: ifb.index, ...tbf(bw.egressRate, bw.egressBurst) });
      host.addIngressQdisc(veth.index);
      host.addRedirect({ index: veth.index, to: ifb.index });
    }
  } catch (e) {
    if (e instanceof CniError) throw e;
    throw new CniError(ErrorCode.IOFailure, `cannot shape bandwidth of "${veth.name}": ${(e as Error).message}`, "", { cause: e });
  }
}

/** CHECK: the qdiscs (and ifb) the limits need are there; throws a CniError naming the first missing. */
export function checkBandwidth(host: Netlink, veth: Link, bw: Bandwidth | undefined): void {
  if (!bw) return;
  const missing = (what: string) => new CniError(ErrorCode.Internal, `bandwidth limit of "${veth.name}": ${what} is missing`);
  const has = (index: number, kind: string) => host.qdiscs(index).some((q) => q.kind === kind);
  if (bw.ingressRate && !has(veth.index, "tbf")) throw missing(`tbf qdisc on "${veth.name}"`);
  if (bw.egressRate) {
    const ifb = host.link(ifbName(veth.name));
    if (!ifb) throw missing(`ifb "${ifbName(veth.name)}"`);
    if (!has(ifb.index, "tbf")) throw missing(`tbf qdisc on "${ifb.name}"`);
    if (!has(veth.index, "ingress")) throw missing(`ingress qdisc on "${veth.name}"`);
  }
}

/** Deletes the ifb of a host veth, if it has one (the veth's own qdiscs go with it). */
export function removeBandwidth(host: Netlink, hostIfname: string): void {
  try {
    host.delLink(ifbName(hostIfname));
  } catch (e) {
    if (!isErrno(e, "ENODEV", "ENOENT")) throw e;
  }
}

/** The ifb's alias names the network, so GC can tell whose it is once its veth is gone. */
const ifbAlias = (network: string) => `mncni-ifb/${network}`;

/** GC: this network's ifbs, from one listing of links, whose host veth is stale (or missing from the same listing). */
export function staleIfbs(links: Link[], network: string, isStale: (hostIfname: string) => boolean): Link[] {
  return links.filter((l) => l.kind === "ifb" && l.name.startsWith(IFB_PREFIX) && l.alias === ifbAlias(network) && isStale(vethOfIfb(l.name)));
}
