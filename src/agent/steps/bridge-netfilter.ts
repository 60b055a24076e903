// Step "bridgeNetfilter": in bridge mode, net.bridge.bridge-nf-call-iptables and -ip6tables
// on, always. Traffic between two pods of one node's bridge is bridged, not routed: without
// these sysctls it never meets the IP hooks, so conntrack never sees it. Then a Service
// connection from one pod to a backend on the same bridge breaks: the DNAT (kube-proxy's, or
// any Service proxy's) happens on the way in, routed through the node, but the backend's
// reply goes straight across the bridge to the client and is never translated back, so the
// client gets an answer from an address it did not call and resets it. Policy needs them for
// the same reason (same-node traffic seen by the inet forward hook). kube-proxy only warns
// when they are off (docs/services.md, "Running beside kube-proxy").
import type { Pass, StepModule } from "./step.ts";

export const BRIDGE_NF_SYSCTLS = ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] as const;

export const bridgeNetfilterStep: StepModule<"bridgeNetfilter"> = {
  name: "bridgeNetfilter",
  create({ cfg, deps }) {
    return {
      run(p: Pass) {
        if (cfg.mode !== "bridge") return;
        for (const name of BRIDGE_NF_SYSCTLS) {
          let v: string;
          try {
            v = deps.sysctl.get(name);
          } catch {
            // br_netfilter is not loaded: a warning (the node still carries routed traffic); the
            // policy step makes it a problem when a policy selects a local pod.
            p.r.warnings.push(`cannot read ${name} (is br_netfilter loaded?): replies of Service connections between pods of this node's bridge are not translated back`);
            continue;
          }
          if (v === "1") continue;
          deps.sysctl.set(name, "1");
          p.r.writes++;
          p.r.changes.push(`set ${name}=1`);
        }
      },
    };
  },
};
