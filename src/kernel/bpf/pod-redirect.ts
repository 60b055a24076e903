// The fast path's first program: on a pod's host-side device (clsact ingress, direct action),
// a packet from that pod to another local "plain" pod (no policy selects either, not held)
// is put straight into the destination pod's namespace with bpf_redirect_peer; everything
// else returns TC_ACT_OK and takes the normal stack, as without the program.
//
// It redirects only what it can prove the stack would have delivered unchanged:
//   - IPv4 without options, not a fragment, not ICMP (errors and their quoting take the stack),
//     TTL above 1 (the stack answers Time Exceeded);
//   - the source address is a plain pod's, behind this very device, with its MAC
//     (anti-spoofing: a forged source takes the stack, whose anti-spoofing drops it);
//   - the destination address is a plain pod's, on another device.
// When the frame was addressed to the gateway (routed) the TTL is decremented and the MACs
// become the destination's gateway and pod, as routing would; a frame addressed to the pod's
// own MAC (pods on one bridge) is switched unchanged.
import { Asm, R } from "./asm.ts";
import { MAP_TYPE, PROG_TYPE, closeBpfFd, mapCreate, mapDelete, mapKeys, mapLookup, mapUpdate, progLoad } from "./syscall.ts";

/** Helper numbers (include/uapi/linux/bpf.h). */
const HELPER = { mapLookupElem: 1, skbStoreBytes: 9, l3CsumReplace: 10, skbChangeType: 32, redirectPeer: 155 } as const;
const TC_ACT_OK = 0;
const PACKET_HOST = 0;
/** struct __sk_buff offsets. */
const SKB = { ifindex: 40, data: 76, dataEnd: 80 } as const;
const ETH_HLEN = 14;
const IP = { verIhl: ETH_HLEN + 0, fragOff: ETH_HLEN + 6, ttl: ETH_HLEN + 8, proto: ETH_HLEN + 9, check: ETH_HLEN + 10, saddr: ETH_HLEN + 12, daddr: ETH_HLEN + 16 } as const;
const IPPROTO_ICMP = 1;

/** Plain pods map: key the IPv4 address (4 bytes, network order), value PlainPod. */
export const PLAIN_KEY_SIZE = 4;
/** value: pod MAC (6), its gateway's MAC (6, the host device's), the host device's ifindex (u32). */
export const PLAIN_VALUE_SIZE = 16;
const V = { podMac: 0, hostMac: 6, ifindex: 12 } as const;

export interface PlainPod {
  /** IPv4 address */
  ip: string;
  /** the pod's MAC (its eth0) */
  podMac: string;
  /** the MAC the pod's packets come from when routed to it: its host-side device's */
  hostMac: string;
  /** the host-side device's ifindex (bpf_redirect_peer's target) */
  hostIndex: number;
}

/** The program's instructions, using the plain pods map whose fd is given. */
export function podRedirectProgram(plainMapFd: number): Uint8Array {
  const a = new Asm();
  const { r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, fp } = R;
  a.movReg(r6, r1); // ctx
  a.load("w", r7, r6, SKB.data);
  a.load("w", r2, r6, SKB.dataEnd);
  a.movReg(r3, r7).alu("add", r3, ETH_HLEN + 20);
  a.jmpReg("gt", r3, r2, "stack");
  // Reads are little-endian: 0x0800 in network order reads as 0x0008.
  a.load("h", r3, r7, 12).jmp("ne", r3, 0x0008, "stack");
  a.load("b", r3, r7, IP.verIhl).jmp("ne", r3, 0x45, "stack");
  // MF flag and fragment offset: the low 6 bits of the first byte and all of the second.
  a.load("h", r3, r7, IP.fragOff).alu("and", r3, 0xff3f).jmp("ne", r3, 0, "stack");
  a.load("b", r3, r7, IP.proto).jmp("eq", r3, IPPROTO_ICMP, "stack");
  a.load("b", r3, r7, IP.ttl).jmp("le", r3, 1, "stack");
  a.load("w", r3, r7, IP.saddr).store("w", fp, -4, r3);
  a.load("w", r3, r7, IP.daddr).store("w", fp, -8, r3);

  // The source: a plain pod, behind the device the packet came in on, with its own MAC.
  a.loadMap(r1, plainMapFd).movReg(r2, fp).alu("add", r2, -4).call(HELPER.mapLookupElem);
  a.jmp("eq", r0, 0, "stack");
  a.load("w", r1, r0, V.ifindex).load("w", r2, r6, SKB.ifindex).jmpReg("ne", r1, r2, "stack");
  a.load("w", r1, r7, 6).load("w", r2, r0, V.podMac).jmpReg("ne", r1, r2, "stack");
  a.load("h", r1, r7, 10).load("h", r2, r0, V.podMac + 4).jmpReg("ne", r1, r2, "stack");

  // The destination: a plain pod behind another device.
  a.loadMap(r1, plainMapFd).movReg(r2, fp).alu("add", r2, -8).call(HELPER.mapLookupElem);
  a.jmp("eq", r0, 0, "stack");
  a.movReg(r9, r0);
  a.load("w", r1, r9, V.ifindex).load("w", r2, r6, SKB.ifindex).jmpReg("eq", r1, r2, "stack");

  // Addressed to the destination pod's MAC: switched (one bridge), no change.
  a.load("w", r1, r7, 0).load("w", r2, r9, V.podMac).jmpReg("ne", r1, r2, "routed");
  a.load("h", r1, r7, 4).load("h", r2, r9, V.podMac + 4).jmpReg("eq", r1, r2, "redirect");
  a.label("routed");
  // TTL - 1 with the checksum fixed up: the 16-bit word at the TTL is TTL | protocol << 8
  // as read, so subtracting one changes only the TTL (it is above 1).
  a.load("h", r8, r7, IP.ttl);
  a.movReg(r1, r6).mov(r2, IP.check).movReg(r3, r8).movReg(r4, r8).alu("sub", r4, 1).mov(r5, 2).call(HELPER.l3CsumReplace);
  a.movReg(r3, r8).alu("sub", r3, 1).store("h", fp, -12, r3);
  a.movReg(r1, r6).mov(r2, IP.ttl).movReg(r3, fp).alu("add", r3, -12).mov(r4, 1).mov(r5, 0).call(HELPER.skbStoreBytes);
  // Destination MAC then source MAC: the value's first 12 bytes, in that order.
  a.movReg(r1, r6).mov(r2, 0).movReg(r3, r9).mov(r4, 12).mov(r5, 0).call(HELPER.skbStoreBytes);
  a.label("redirect");
  // The frame reached the host device addressed to someone else; in the pod it is for the pod.
  a.movReg(r1, r6).mov(r2, PACKET_HOST).call(HELPER.skbChangeType);
  a.load("w", r1, r9, V.ifindex).mov(r2, 0).call(HELPER.redirectPeer);
  a.exit();
  a.label("stack");
  a.mov(r0, TC_ACT_OK).exit();
  return a.assemble();
}

/** Loads the program over a map; the caller owns (and closes) the fd. */
export function loadPodRedirect(plainMapFd: number): number {
  return progLoad({ type: PROG_TYPE.SCHED_CLS, insns: podRedirectProgram(plainMapFd), license: "GPL", name: "mncni_pod_redir" });
}

function ipKey(ip: string): Uint8Array {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`not an IPv4 address: ${ip}`);
  return Uint8Array.from(parts);
}

function macBytes(mac: string): number[] {
  const b = mac.split(":").map((h) => parseInt(h, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw new RangeError(`not a MAC address: ${mac}`);
  return b;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

/** The plain pods map (a hash map by IPv4 address), over an fd this object owns. */
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
    mapUpdate(this.fd, ipKey(p.ip), v);
  }

  delete(ip: string): boolean {
    return mapDelete(this.fd, ipKey(ip));
  }

  get(ip: string): PlainPod | undefined {
    const v = mapLookup(this.fd, ipKey(ip), PLAIN_VALUE_SIZE);
    if (!v) return undefined;
    return { ip, podMac: hex(v.subarray(0, 6)), hostMac: hex(v.subarray(6, 12)), hostIndex: new DataView(v.buffer).getUint32(V.ifindex, true) };
  }

  ips(): string[] {
    return mapKeys(this.fd, PLAIN_KEY_SIZE).map((k) => [...k].join("."));
  }

  close(): void {
    closeBpfFd(this.fd);
  }
}
