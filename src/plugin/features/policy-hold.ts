// The fail-closed policy hold as a per-pod feature (`policyHold`, written by the agent
// while the cluster has policies): the pod's addresses are held from ADD until the agent
// programmed its policy (the mechanism: ../policy-hold.ts).
import type { Feature } from "../feature.ts";
import { holdPod, releasePod } from "../policy-hold.ts";

export const policyHold: Feature = {
  name: "policyHold",
  keys: { policyHold: "boolean" },
  configure(net) {
    if (net.policyHold !== true) return undefined;
    return {
      attach(a) {
        holdPod(a.podAddrs);
        a.undo.push("release policy hold", () => releasePod(a.podAddrs));
      },
      // A pod held (no agent answered its ADD) and deleted before the agent programmed it:
      // its addresses leave the hold with it, before IPAM can hand them to another pod.
      detached(d) {
        if (d.addrs.length) releasePod(d.addrs);
      },
    };
  },
};
