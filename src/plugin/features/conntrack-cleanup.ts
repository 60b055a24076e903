// Conntrack cleanup as a per-pod feature (always on): a pod's addresses inherit neither the
// flows nor the neighbour entries of the pod that had them before (../conntrack-cleanup.ts,
// ../neighbours.ts).
import { forgetConntrack, whenForgotten } from "../conntrack-cleanup.ts";
import type { Feature } from "../feature.ts";
import { forgetNeighbours } from "../neighbours.ts";
import { addrOf } from "../../net/ip.ts";

export const conntrackCleanup: Feature = {
  name: "conntrackCleanup",
  configure: () => ({
    // A reused address must not inherit its previous pod's flows: forgotten before the pod is
    // wired, unless IPAM knows a DEL forgot them (the addresses not in flowsMayRemain).
    addressed: (a) => forgetConntrack(a.ips.map((i) => addrOf(i.address)).filter((x) => a.flowsMayRemain.includes(x))),
    // The pod is cut off: its flows go before its addresses can be handed out again, then
    // its neighbour entries (after the flows, which could otherwise make new ones).
    detached(d) {
      forgetConntrack(d.addrs);
      forgetNeighbours(d.host, d.addrs);
    },
    // Only once the flows are gone may IPAM spare the addresses' next holders the walk.
    released(r) {
      if (r.flowsForgotten) whenForgotten(r.flowsForgotten);
    },
  }),
};
