// Step "routes": the routing backend --routing chose reaches the admitted pod CIDRs of the
// other nodes; the objects of every other registered backend are removed (--routing changed).
import { familyOf } from "../../net/ip.ts";
import { leafBackends, type Peer, type RoutingReport } from "../routing/index.ts";
import { selfIPs, type Pass, type StepModule } from "./step.ts";

export const routesStep: StepModule<"routes"> = {
  name: "routes",
  needsAdmission: true,
  create({ cfg, deps, routing }) {
    return {
      run(p: Pass) {
        const self = cfg.nodeName;
        const peers: Peer[] = [];
        for (const name of [...p.state.nodes.keys()].sort()) {
          if (name === self) continue;
          const node = p.state.nodes.get(name)!;
          peers.push({ name, internalIPs: node.internalIPs, podCIDRs: p.admitted!.podCIDRs.get(name) ?? [], ...(node.routing ? { published: node.routing } : {}) });
        }
        const merge = (rep: RoutingReport) => {
          p.r.writes += rep.writes;
          p.r.changes.push(...rep.changes);
          // Per peer: the others are still served, so the node stays ready (ReconcileReport.peerWarnings).
          p.r.peerWarnings.push(...rep.problems);
          for (const message of rep.errors) p.r.errors.push({ step: "routes", message });
          if (rep.errors.length) p.failed.add("routes");
        };
        // Objects of a backend this node no longer uses (--routing changed) go first; the parts of
        // the active one (auto's host-gw and VXLAN) are its own.
        // Composites (auto) are removed through their parts, so one never removes a part in use.
        const active = new Set(leafBackends([routing.active]));
        for (const other of leafBackends(routing.all)) if (!active.has(other)) merge(other.remove(deps.nl));
        // Pod address families in use on this node: its own pod CIDRs' and the cluster's.
        const families = [...new Set([...p.own, ...cfg.clusterCidr].map(familyOf))];
        const rep = routing.active.reconcile({ self, peers, localAddrs: p.localAddrs, selfIPs: selfIPs(p, self), families }, deps.nl);
        merge(rep);
        p.r.routesProgrammed = rep.routes;
        p.r.paths = rep.paths;
        // Published even when empty: what an earlier backend published is withdrawn.
        p.r.routingPublished = rep.published ?? {};
      },
    };
  },
};
