// Step "pod-cidrs": which pod CIDRs of which Nodes may be used (src/agent/pod-cidrs.ts decides,
// the same for every backend). Later steps read the result from the Pass; those that act on the
// admitted CIDRs are skipped when this step fails.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ClusterState } from "../../cluster/types.ts";
import { CONFLIST_NAME } from "../conflist.ts";
import { admitPodCIDRs, type Admission, type FaultMemo } from "../pod-cidrs.ts";
import type { Pass, StepContext, StepModule } from "./step.ts";

export const podCidrsStep: StepModule<"pod-cidrs"> = {
  name: "pod-cidrs",
  create(ctx: StepContext) {
    const { cfg, deps } = ctx;
    /**
     * Pod CIDRs admitted by the last pass, per peer: a later change of one is a change in place.
     * Undefined until the first pass seeds it from the routes the backend has in the kernel, so a
     * restarted agent still knows which Nodes were established.
     */
    let peersInUse: Map<string, string[]> | undefined;
    /** The last admission and what it was made from: a no-change pass reuses it (a thousand Nodes). */
    let admission: { nodes: ClusterState["nodes"]; addrs: string; own: string; result: Admission } | undefined;
    const faults: FaultMemo = { faults: new Map() };

    /** Peers whose pod CIDRs the backend already routes (an earlier run of this agent admitted them). */
    const routedPeers = (state: ClusterState): Map<string, string[]> => {
      const routed = new Set(deps.nl.routes().filter((r) => ctx.routing.active.ownsRoute(r)).map((r) => r.dst));
      const out = new Map<string, string[]>();
      for (const n of state.nodes.values()) {
        const used = n.podCIDRs.filter((c) => routed.has(c));
        if (n.name !== cfg.nodeName && used.length) out.set(n.name, used);
      }
      return out;
    };

    return {
      run(p: Pass) {
        const self = cfg.nodeName;
        p.localAddrs = deps.nl.addrs();
        const ownInUse = (ctx.ownInUse.cidrs ??= conflistSubnets(join(cfg.cniConfDir, CONFLIST_NAME)));
        peersInUse ??= routedPeers(p.state);
        const addrs = JSON.stringify(p.localAddrs);
        const own = ownInUse.join();
        const m = admission;
        let a: Admission;
        // Admission is idempotent: with what it admitted as in use (the peers it keeps, the conflist
        // written from it), the same input gives the same result.
        const sameOwn = m && (m.own === own || m.result.podCIDRs.get(self)?.join() === own);
        if (m && sameOwn && m.nodes === p.state.nodes && m.addrs === addrs) {
          a = m.result;
        } else {
          const inUse = new Map(peersInUse);
          inUse.set(self, ownInUse);
          a = admitPodCIDRs({ self, nodes: p.state.nodes, clusterCidr: cfg.clusterCidr, localAddrs: p.localAddrs, inUse, memo: faults });
          peersInUse = new Map([...a.podCIDRs].filter(([name, cidrs]) => name !== self && cidrs.length > 0));
          admission = { nodes: p.state.nodes, addrs, own, result: a };
        }
        p.r.problems.push(...a.problems);
        if (!p.state.nodes.has(self)) p.r.problems.push(`node "${self}" is not in the cluster state: its own pod CIDRs are unknown`);
        p.admitted = a;
        p.own = a.podCIDRs.get(self) ?? [];
      },
    };
  },
};

/** The subnets of the mncni-ipam ranges in a conflist this agent wrote; none when absent or unreadable. */
function conflistSubnets(path: string): string[] {
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as { plugins?: { ipam?: { ranges?: { subnet?: unknown }[][] } }[] };
    return (c.plugins?.[0]?.ipam?.ranges ?? []).flat().map((r) => r.subnet).filter((s): s is string => typeof s === "string");
  } catch {
    // No conflist yet (a new node) or not one we can read: no pod CIDR is in use.
    return [];
  }
}
