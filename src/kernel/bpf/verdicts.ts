// What the fast path's programs decided, packet by packet: a per-CPU array the programs
// increment (one slot per verdict, no atomics: each CPU writes its own copy) and a reader
// that adds the CPUs up, for the agent's metric.
import { MAP_TYPE, closeBpfFd, mapCreate, mapLookup, possibleCpus } from "./syscall.ts";

/**
 * Every verdict, in slot order (the slot is the index; append only, so that a reader and a
 * program of different builds agree). `redirect` verdicts skipped the stack; `stack` ones
 * returned TC_ACT_UNSPEC and the reason says why.
 */
export const VERDICTS = [
  { key: "redirect_local", verdict: "redirect", reason: "local_pod", help: "to a plain pod on this node (bpf_redirect_peer)" },
  { key: "redirect_remote", verdict: "redirect", reason: "remote_pod", help: "to a pod on another node over host-gw (bpf_redirect_neigh out of the underlay)" },
  { key: "redirect_from_underlay", verdict: "redirect", reason: "from_underlay", help: "from a pod on another node to a plain pod here (bpf_redirect_peer)" },
  { key: "not_ip", verdict: "stack", reason: "not_ip", help: "neither IPv4 nor IPv6 (ARP, other), or shorter than its headers" },
  { key: "ip_header", verdict: "stack", reason: "ip_header", help: "IPv4 with options, IPv6 with extension headers or another next header than TCP, UDP, SCTP" },
  { key: "fragment", verdict: "stack", reason: "fragment", help: "a fragment" },
  { key: "icmp", verdict: "stack", reason: "icmp", help: "ICMP or ICMPv6 (errors and what they quote, neighbour discovery)" },
  { key: "ttl", verdict: "stack", reason: "ttl", help: "TTL or hop limit 1 or 0: the stack answers Time Exceeded" },
  { key: "not_plain_source", verdict: "stack", reason: "not_plain_source", help: "the source is not a plain pod" },
  { key: "spoofed", verdict: "stack", reason: "spoofed", help: "the source address or MAC is not the one behind the device it came in on" },
  { key: "not_plain_destination", verdict: "stack", reason: "not_plain_destination", help: "the destination is not a plain pod here, nor a pod behind a host-gw route" },
  { key: "not_via_gateway", verdict: "stack", reason: "not_via_gateway", help: "the frame is addressed neither to the destination pod nor to the gateway" },
  { key: "same_device", verdict: "stack", reason: "same_device", help: "the destination is behind the device the packet came in on" },
  { key: "no_route", verdict: "stack", reason: "no_route", help: "the route lookup did not forward it (unreachable, local, forwarding off, ...)" },
  { key: "mtu", verdict: "stack", reason: "mtu", help: "larger than the route's MTU: the stack fragments it or answers Fragmentation Needed" },
  { key: "not_host_gw_route", verdict: "stack", reason: "not_host_gw_route", help: "the route goes out of another device than the node's host-gw underlay (VXLAN, ...)" },
  { key: "not_from_pod_network", verdict: "stack", reason: "not_from_pod_network", help: "on the underlay: the source is not a pod behind a host-gw route" },
  { key: "not_for_node", verdict: "stack", reason: "not_for_node", help: "on the underlay: the frame is not addressed to this node's MAC" },
  { key: "conntrack", verdict: "stack", reason: "conntrack", help: "on the underlay: a flow conntrack knows (it may translate it: the reply to a Service or hostPort client here)" },
  { key: "not_tcp_udp", verdict: "stack", reason: "not_tcp_udp", help: "on the underlay: neither TCP nor UDP, which the conntrack lookup cannot see" },
] as const;

export type Verdict = (typeof VERDICTS)[number]["key"];
export const VERDICT_SLOT: Record<Verdict, number> = Object.fromEntries(VERDICTS.map((v, i) => [v.key, i])) as Record<Verdict, number>;
/** Slots in the map: room for verdicts later builds add. */
const SLOTS = 32;

export interface VerdictCount {
  key: Verdict;
  verdict: "redirect" | "stack";
  reason: string;
  /** packets (skbs: a GSO packet counts once) since the map was created */
  packets: number;
}

/** The counters map: a per-CPU array of u64, one slot per verdict, over an fd this object owns. */
export class VerdictCounters {
  private readonly cpus = possibleCpus();
  private constructor(readonly fd: number) {}

  static create(): VerdictCounters {
    return new VerdictCounters(mapCreate({ type: MAP_TYPE.PERCPU_ARRAY, keySize: 4, valueSize: 8, maxEntries: SLOTS, name: "mncni_verdicts" }));
  }

  /** Adopts a map found by its ID (bpf fdById), taking ownership of the fd. */
  static adopt(fd: number): VerdictCounters {
    return new VerdictCounters(fd);
  }

  /** Every verdict with its count, summed over the CPUs. */
  read(): VerdictCount[] {
    return VERDICTS.map((v, slot) => {
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, slot, true);
      const value = mapLookup(this.fd, key, 8 * this.cpus);
      let packets = 0n;
      if (value) {
        const dv = new DataView(value.buffer);
        for (let cpu = 0; cpu < this.cpus; cpu++) packets += dv.getBigUint64(cpu * 8, true);
      }
      return { key: v.key, verdict: v.verdict, reason: v.reason, packets: Number(packets) };
    });
  }

  /** One verdict's count. */
  get(key: Verdict): number {
    return this.read().find((c) => c.key === key)!.packets;
  }

  close(): void {
    closeBpfFd(this.fd);
  }
}
