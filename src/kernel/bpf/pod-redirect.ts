// The fast path's pod program: on a pod's host-side device (clsact ingress, direct action),
// a packet from that pod
//   - to another local "plain" pod (no policy selects either, not held) is put straight into
//     the destination pod's namespace with bpf_redirect_peer;
//   - given the host-gw routes map, to a pod on another node behind a host-gw route is sent
//     out of the underlay with bpf_redirect_neigh (the kernel resolves the next hop's MAC);
// everything else returns TC_ACT_UNSPEC and takes the normal stack, as without the program.
//
// It redirects only what it can prove the stack would have delivered the same way:
//   - IPv4 without options, not a fragment, not ICMP (errors and their quoting take the stack),
//     TTL above 1 (the stack answers Time Exceeded);
//   - the source address is a plain pod's, behind this very device, with its MAC
//     (anti-spoofing: a forged source takes the stack, whose anti-spoofing drops it);
//   - the frame is addressed to the destination pod (one bridge: switched unchanged) or to
//     the source pod's gateway (routed: TTL - 1 and the MACs of the next link, as routing);
//   - to a local pod: the destination address is a plain pod's, on another device;
//   - to a remote pod: the kernel's route lookup from this device (bpf_fib_lookup: the same
//     FIB, rules and forwarding switch as the stack) forwards it out of the device the
//     host-gw routes map names for that pod CIDR, within the route's MTU (a GSO packet by
//     its segments' size); anything else (VXLAN, unreachable, too big) takes the stack.
// Every verdict is counted in the counters map when one is given (verdicts.ts).
import { R } from "./asm.ts";
import { ADDR_KEY_SIZE, addrKey, keyAddr } from "./addr-keys.ts";
import { HELPER, IP, IPPROTO, L3, SKB, SLOT, TcProgram } from "./tc-program.ts";
import { MAP_TYPE, PROG_TYPE, closeBpfFd, mapCreate, mapDelete, mapKeys, mapLookup, mapUpdate, progLoad } from "./syscall.ts";

/** bpf_fib_lookup's results that forward (NO_NEIGH: the neighbour is not resolved yet; redirect_neigh resolves it). */
const FIB = { success: 0, noNeigh: 7, fragNeeded: 8 } as const;
/** struct bpf_fib_lookup (64 bytes). */
const FIB_PARAMS = { family: 0, l4Protocol: 1, totLen: 6, ifindex: 8, tos: 12, src: 16, dst: 32, size: 64 } as const;
/** struct bpf_redir_neigh: nh_family (u32), then the address (16 bytes). */
const NEIGH_SIZE = 20;
const AF_INET = 2;
const AF_INET6 = 10;

/** Plain pods map: key the address (16 bytes, IPv4 as IPv4-mapped IPv6: addr-keys.ts), value PlainPod. */
export const PLAIN_KEY_SIZE = ADDR_KEY_SIZE;
/** value: pod MAC (6), its gateway's MAC (6, the host device's), the host device's ifindex (u32). */
export const PLAIN_VALUE_SIZE = 16;
export const V = { podMac: 0, hostMac: 6, ifindex: 12 } as const;

export interface PlainPod {
  /** IPv4 or IPv6 address */
  ip: string;
  /** the pod's MAC (its eth0) */
  podMac: string;
  /**
   * the pod's gateway MAC: the one its routed packets are addressed to and come from (routed
   * mode: its host-side device's; bridge mode: the bridge's). A frame from the pod addressed
   * to another MAC than this or the destination pod's takes the stack.
   */
  hostMac: string;
  /** the host-side device's ifindex (bpf_redirect_peer's target) */
  hostIndex: number;
}

/** The other maps a program may use, by fd: each is optional. */
export interface FastPathMaps {
  /** the verdict counters (VerdictCounters): without it nothing is counted */
  counters?: number;
  /** the host-gw routes (HostGwRoutesMap): without it only local pods are redirected */
  hostGw?: number;
}

/** The program's instructions, using the plain pods map whose fd is given. */
export function podRedirectProgram(plainMapFd: number, maps: FastPathMaps = {}): Uint8Array {
  const p = new TcProgram(maps.counters);
  const { a } = p;
  const { r0, r1, r2, r6, r8, r9 } = R;
  p.l3Header();

  // The source: a plain pod, behind the device the packet came in on, with its own MAC.
  p.lookup(plainMapFd, SLOT.saddr);
  a.jmp("eq", r0, 0, p.toStack("not_plain_source"));
  a.load("w", r1, r0, V.ifindex).load("w", r2, r6, SKB.ifindex).jmpReg("ne", r1, r2, p.toStack("spoofed"));
  p.macDiffers(6, r0, V.podMac, p.toStack("spoofed"));
  a.movReg(r8, r0);

  // The destination: a plain pod behind another device, or a remote pod.
  p.lookup(plainMapFd, SLOT.daddr);
  a.jmp("eq", r0, 0, maps.hostGw === undefined ? p.toStack("not_plain_destination") : "remote");
  a.movReg(r9, r0);
  a.load("w", r1, r9, V.ifindex).load("w", r2, r6, SKB.ifindex).jmpReg("eq", r1, r2, p.toStack("same_device"));

  // Addressed to the destination pod's MAC: switched (one bridge), no change.
  p.macDiffers(0, r9, V.podMac, "routed");
  a.goto("local");
  a.label("routed");
  p.macDiffers(0, r8, V.hostMac, p.toStack("not_via_gateway"));
  p.decrementTtl();
  p.rewriteMacs(r9);
  a.label("local");
  p.redirectPeer(r9, V.ifindex, "redirect_local");

  if (maps.hostGw !== undefined) remote(p, maps.hostGw);
  return p.assemble();
}

/** A destination that is no local plain pod: a pod behind a host-gw route, out of the underlay. */
function remote(p: TcProgram, hostGwFd: number): void {
  const { a } = p;
  const { r0, r1, r2, r6, r8, r9, fp } = R;
  a.label("remote");
  p.macDiffers(0, r8, V.hostMac, p.toStack("not_via_gateway"));
  p.lookupLpm(hostGwFd, SLOT.daddr);
  a.jmp("eq", r0, 0, p.toStack("not_plain_destination"));
  a.movReg(r9, r0);

  // The kernel's own route lookup, as the stack would do it for this packet on this device.
  a.mov(r1, 0);
  for (let off = 0; off < FIB_PARAMS.size; off += 8) a.store("dw", fp, SLOT.fib + off, r1);
  a.load("w", r1, r6, SKB.ifindex).store("w", fp, SLOT.fib + FIB_PARAMS.ifindex, r1);
  p.ifV6("fib6");
  fibParams(p, 4);
  a.goto("fib");
  a.label("fib6");
  fibParams(p, 6);
  a.label("fib");
  a.movReg(r1, r6).movReg(r2, fp).alu("add", r2, SLOT.fib).mov(R.r3, FIB_PARAMS.size).mov(R.r4, 0).call(HELPER.fibLookup);
  a.jmp("eq", r0, FIB.fragNeeded, p.toStack("mtu"));
  a.jmp("eq", r0, FIB.success, "routed_out").jmp("ne", r0, FIB.noNeigh, p.toStack("no_route"));
  a.label("routed_out");
  // Out of the host-gw underlay, not of another device (a VXLAN peer, a changed route).
  a.load("w", r1, fp, SLOT.fib + FIB_PARAMS.ifindex).load("w", r2, r9, 0).jmpReg("ne", r1, r2, p.toStack("not_host_gw_route"));
  p.decrementTtl();
  // The next hop the lookup chose (the destination field now holds the gateway, and the
  // family field its family), its MAC resolved by the kernel.
  a.load("b", r1, fp, SLOT.fib + FIB_PARAMS.family).store("w", fp, SLOT.neigh, r1);
  p.copyKey(SLOT.fib + FIB_PARAMS.dst, SLOT.neigh + 4);
  a.load("w", r1, fp, SLOT.fib + FIB_PARAMS.ifindex).movReg(r2, fp).alu("add", r2, SLOT.neigh).mov(R.r3, NEIGH_SIZE).mov(R.r4, 0).call(HELPER.redirectNeigh);
  p.redirected("redirect_remote");
}

/**
 * bpf_fib_lookup's input for one family: addresses, protocol, TOS (IPv4), and the length the
 * route's MTU is checked against (tot_len, host order): the packet's, or for a GSO packet
 * one segment's (headers + gso_size), as the stack's forward checks it.
 */
function fibParams(p: TcProgram, family: 4 | 6): void {
  const { a } = p;
  const { r1, r2, r3, r4, r6, r7, fp } = R;
  const l3 = L3[family];
  a.mov(r1, family === 4 ? AF_INET : AF_INET6).store("b", fp, SLOT.fib + FIB_PARAMS.family, r1);
  a.load("b", r1, r7, l3.proto).store("b", fp, SLOT.fib + FIB_PARAMS.l4Protocol, r1);
  if (family === 4) {
    a.load("b", r1, r7, IP.tos).store("b", fp, SLOT.fib + FIB_PARAMS.tos, r1);
    a.load("w", r1, fp, SLOT.saddr + 12).store("w", fp, SLOT.fib + FIB_PARAMS.src, r1);
    a.load("w", r1, fp, SLOT.daddr + 12).store("w", fp, SLOT.fib + FIB_PARAMS.dst, r1);
  } else {
    p.copyKey(SLOT.saddr, SLOT.fib + FIB_PARAMS.src);
    p.copyKey(SLOT.daddr, SLOT.fib + FIB_PARAMS.dst);
  }
  const [gso, udp, done] = [`gso${family}`, `gso_udp${family}`, `tot_len${family}`];
  a.load("w", r2, r6, SKB.gsoSize).jmp("ne", r2, 0, gso);
  a.load("b", r1, r7, l3.len).alu("lsh", r1, 8).load("b", r3, r7, l3.len + 1).aluReg("or", r1, r3);
  if (l3.lenIsPayload) a.alu("add", r1, l3.hlen);
  a.goto(done);
  a.label(gso);
  a.load("b", r3, r7, l3.proto).jmp("eq", r3, IPPROTO.UDP, udp).jmp("ne", r3, IPPROTO.TCP, p.toStack("mtu"));
  // TCP: its header's length (data offset) is in the packet past the bounds checked so far.
  a.load("w", r4, r6, SKB.dataEnd).movReg(r3, r7).alu("add", r3, l3.l4 + 13).jmpReg("gt", r3, r4, p.toStack("not_ip"));
  a.load("b", r1, r7, l3.l4 + 12).alu("rsh", r1, 4).alu("lsh", r1, 2).alu("add", r1, l3.hlen).aluReg("add", r1, r2);
  a.goto(done);
  a.label(udp);
  a.movReg(r1, r2).alu("add", r1, l3.hlen + 8);
  a.label(done);
  a.store("h", fp, SLOT.fib + FIB_PARAMS.totLen, r1);
}

/** Loads the program over its maps; the caller owns (and closes) the fd. */
export function loadPodRedirect(plainMapFd: number, maps: FastPathMaps = {}): number {
  return progLoad({ type: PROG_TYPE.SCHED_CLS, insns: podRedirectProgram(plainMapFd, maps), license: "GPL", name: "mncni_pod_redir" });
}

function macBytes(mac: string): number[] {
  const b = mac.split(":").map((h) => parseInt(h, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw new RangeError(`not a MAC address: ${mac}`);
  return b;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** The plain pods map (a hash map by IPv4 or IPv6 address), over an fd this object owns. */
export class PlainPodsMap {
  private constructor(readonly fd: number) {}

  static create(maxEntries = 4096): PlainPodsMap {
    return new PlainPodsMap(mapCreate({ type: MAP_TYPE.HASH, keySize: PLAIN_KEY_SIZE, valueSize: PLAIN_VALUE_SIZE, maxEntries, name: "mncni_plain" }));
  }

  /** Adopts a map found by its ID (bpf fdById), taking ownership of the fd. */
  static adopt(fd: number): PlainPodsMap {
    return new PlainPodsMap(fd);
  }

  set(p: PlainPod): void {
    const v = new Uint8Array(PLAIN_VALUE_SIZE);
    v.set(macBytes(p.podMac), V.podMac);
    v.set(macBytes(p.hostMac), V.hostMac);
    new DataView(v.buffer).setUint32(V.ifindex, p.hostIndex, true);
    mapUpdate(this.fd, addrKey(p.ip), v);
  }

  delete(ip: string): boolean {
    return mapDelete(this.fd, addrKey(ip));
  }

  get(ip: string): PlainPod | undefined {
    const v = mapLookup(this.fd, addrKey(ip), PLAIN_VALUE_SIZE);
    if (!v) return undefined;
    return { ip: keyAddr(addrKey(ip)), podMac: hex(v.subarray(0, 6)), hostMac: hex(v.subarray(6, 12)), hostIndex: new DataView(v.buffer).getUint32(V.ifindex, true) };
  }

  ips(): string[] {
    return mapKeys(this.fd, PLAIN_KEY_SIZE).map(keyAddr);
  }

  close(): void {
    closeBpfFd(this.fd);
  }
}
