// The `bandwidth` capability as a per-pod feature: tbf on the host veth and on the pod's
// ifb (../bandwidth.ts). Always on: DEL and GC remove an ifb whatever the config says now.
import { isErrno } from "../../kernel/index.ts";
import { checkBandwidth, removeBandwidth, shapeBandwidth, staleIfbs } from "../bandwidth.ts";
import { parseBandwidth } from "../capabilities.ts";
import type { Feature } from "../feature.ts";

export const bandwidth: Feature = {
  name: "bandwidth",
  configure(net, { cleanup }) {
    const limits = cleanup ? undefined : parseBandwidth(net.runtimeConfig?.bandwidth);
    return {
      attach: (a) => shapeBandwidth(a.host, a.network, a.veth, limits, a.undo),
      verify: (v) => checkBandwidth(v.host, v.veth, limits),
      // The veth's own qdiscs go with it; its ifb does not.
      detached: (d) => removeBandwidth(d.host, d.hostIfname),
      collect(g) {
        // An ifb is created after its veth, so one listing of links that has the ifb and
        // not its veth shows a leftover.
        try {
          const links = g.host.links();
          const present = new Set(links.map((l) => l.name));
          for (const ifb of staleIfbs(links, g.network, (veth) => !present.has(veth) && !g.valid.has(veth))) {
            try {
              g.host.delLink(ifb.index);
            } catch (e) {
              if (!isErrno(e, "ENODEV")) g.problems.push(`cannot delete stale ifb "${ifb.name}": ${(e as Error).message}`);
            }
          }
        } catch (e) {
          g.problems.push((e as Error).message);
        }
      },
    };
  },
};
