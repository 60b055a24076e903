// The pod MTU: the underlay's (the link holding this node's InternalIP, through which the
// peers are reached) minus what the backend adds per packet. A pod interface larger than that
// would send packets the tunnel must fragment or drop; smaller wastes throughput.
import { familyOf, type Family } from "../../net/ip.ts";
import type { LocalAddr } from "./backend.ts";

const FALLBACK_MTU = 1500;

/** The smallest MTU among the links holding this node's InternalIPs; undefined when none is local. Pure. */
export function underlayMTU(selfIPs: readonly string[], localAddrs: readonly LocalAddr[], mtuOf: (index: number) => number | undefined): number | undefined {
  const mtus = selfIPs
    .map((ip) => localAddrs.find((a) => a.address === ip)?.index)
    .map((i) => (i === undefined ? undefined : mtuOf(i)))
    .filter((m): m is number => m !== undefined);
  return mtus.length ? Math.min(...mtus) : undefined;
}

export interface PodMTU {
  mtu: number;
  /** Set when the MTU could not be chosen as it should: a sentence for the node's problems. */
  problem?: string;
}

/**
 * Pure. underlay: the underlay MTU (undefined: no link holds the InternalIP, 1500 assumed); overhead: the
 * backend's bytes per underlay family; families: the underlay families in use (the largest
 * overhead wins: one pod interface carries both); explicit: --mtu, taken as given, with a
 * problem when it leaves no room for the encapsulation.
 */
export function podMTU(o: { underlay?: number; overhead: (f: Family) => number; selfIPs: readonly string[]; explicit?: number }): PodMTU {
  const families = [...new Set(o.selfIPs.map(familyOf))];
  const overhead = Math.max(0, ...families.map(o.overhead));
  const fits = (o.underlay ?? FALLBACK_MTU) - overhead;
  if (o.explicit !== undefined) {
    if (o.underlay !== undefined && o.explicit > fits) {
      return { mtu: o.explicit, problem: `cannot use pod MTU ${o.explicit}: the underlay MTU is ${o.underlay} and the encapsulation takes ${overhead} bytes, so packets above ${fits} bytes are dropped or fragmented` };
    }
    return { mtu: o.explicit };
  }
  // No link holds the InternalIP (a test's or a NATed node's): 1500 is what the kernel gives a new device.
  return { mtu: fits };
}

/**
 * Pure. The peers whose published pod MTU differs from this node's, by name (sorted), with
 * theirs. A peer that has published none (an older agent, a manifests directory nobody wrote it
 * into) is not compared. Pods on two nodes with different MTUs black-hole the larger packets of
 * one direction when PMTU discovery cannot help (ICMP filtered, UDP), so it is reported (a warning), not refused.
 */
export function podMTUMismatches(self: string, own: number, nodes: Iterable<{ name: string; podMTU?: number }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (n.name !== self && n.podMTU !== undefined && n.podMTU !== own) out.set(n.name, n.podMTU);
  }
  return out;
}

/**
 * The /readyz warning for a peer with another pod MTU. A warning, not a readiness failure: a
 * rolling change of the underlay MTU or of --mtu passes through a mismatch on every node, and
 * failing readiness there would take every node out of service at once (docs/routing.md, MTU).
 */
export function podMTUMismatchWarning(peer: string, theirs: number, own: number): string {
  return `node "${peer}" publishes pod MTU ${theirs}, this node's is ${own}: packets larger than the smaller one may be dropped between their pods`;
}

/**
 * Pure. Why the pod MTU is what it is, in words an operator can check: the underlay's MTU and
 * what the backend keeps for its header (auto keeps VXLAN's on every path, also where every
 * peer is reached directly, so that one pod MTU serves a peer that is tunnelled later).
 */
export function podMTUWhy(o: { mtu: number; underlay?: number; overhead: number; routing: string }): string {
  const underlay = o.underlay ?? FALLBACK_MTU;
  const from = o.underlay === undefined ? `${underlay} (assumed: no link holds the node's address)` : `${underlay} underlay`;
  const expected = underlay - o.overhead;
  if (o.mtu !== expected) return `${o.mtu}: not ${from} − ${o.overhead} = ${expected}; set by the agent's --mtu, or the underlay changed since it was written`;
  if (o.overhead === 0) return `${o.mtu} = ${from} (${o.routing} adds no header)`;
  const headroom = o.routing === "auto" ? `${o.overhead} VXLAN headroom kept by auto (one pod MTU for direct and tunnelled peers)` : `${o.overhead} ${o.routing.toUpperCase()} header`;
  return `${o.mtu} = ${from} − ${headroom}`;
}
