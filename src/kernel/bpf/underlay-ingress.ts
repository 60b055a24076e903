// The fast path's way in: on the node's underlay device (clsact ingress, direct action), a
// packet from a pod on another node (its source in the host-gw routes map, arriving on the
// device that map names) to a plain pod here is put straight into the pod's namespace with
// bpf_redirect_peer, TTL - 1 and the MACs of the pod's link, as routing would; everything
// else (traffic for the node, from outside the pod network, over VXLAN, to a pod a policy
// selects) returns TC_ACT_UNSPEC and takes the stack.
//
// The same header checks as the pod program (tc-program.ts): IPv4 without options or IPv6
// without extension headers, not a fragment, not ICMP, TTL above 1; the frame must be
// addressed to this node (the stack routes only what reached its own MAC); and conntrack must
// not know the flow (bpf_skb_ct_lookup): a flow that went through this node's stack may be
// one it translates — the reply from a remote backend to a client here of a Service (DNAT
// here, un-DNAT here) or of a hostPort — so it stays there. Only TCP and UDP can be looked
// up; anything else takes the stack.
import { R } from "./asm.ts";
import { type FastPathMaps, V } from "./pod-redirect.ts";
import { PACKET_HOST, SKB, SLOT, TcProgram } from "./tc-program.ts";
import { PROG_TYPE, progLoad } from "./syscall.ts";

/** The program over the plain pods map and the host-gw routes map (both required here). */
export function underlayIngressProgram(plainMapFd: number, maps: FastPathMaps & { hostGw: number }): Uint8Array {
  const p = new TcProgram(maps.counters);
  const { a } = p;
  const { r0, r1, r2, r6, r9 } = R;
  p.l3Header();
  a.load("w", r1, r6, SKB.pktType).jmp("ne", r1, PACKET_HOST, p.toStack("not_for_node"));

  p.lookup(plainMapFd, SLOT.daddr);
  a.jmp("eq", r0, 0, p.toStack("not_plain_destination"));
  a.movReg(r9, r0);

  // The source: a pod behind a host-gw route out of this very device.
  p.lookupLpm(maps.hostGw, SLOT.saddr);
  a.jmp("eq", r0, 0, p.toStack("not_from_pod_network"));
  a.load("w", r1, r0, 0).load("w", r2, r6, SKB.ifindex).jmpReg("ne", r1, r2, p.toStack("spoofed"));

  // The reply to a client here of a Service or hostPort: conntrack translates it back.
  p.conntrackUnknown();
  p.decrementTtl();
  p.rewriteMacs(r9);
  p.redirectPeer(r9, V.ifindex, "redirect_from_underlay");
  return p.assemble();
}

/** Loads the program over its maps; the caller owns (and closes) the fd. */
export function loadUnderlayIngress(plainMapFd: number, maps: FastPathMaps & { hostGw: number }): number {
  return progLoad({ type: PROG_TYPE.SCHED_CLS, insns: underlayIngressProgram(plainMapFd, maps), license: "GPL", name: "mncni_underlay" });
}
