// Step "services": the Service proxy (--service-proxy): Services and EndpointSlices into
// `inet mncni-services` (src/agent/services/), the healthCheckNodePorts of Local
// LoadBalancers, UDP conntrack entries of endpoints that went away (br_netfilter's sysctls,
// which bridge mode needs for Service replies between pods of one bridge, are the
// bridgeNetfilter step's). Without the flag it removes a table an earlier run left (turning
// the proxy off is the rollback).
import { Nftables } from "../../kernel/index.ts";
import { SERVICES } from "../../firewall/names.ts";
import { HealthCheckServers } from "../services/health.ts";
import { ServiceProxy } from "../services/proxy.ts";
import { forgetStaleUdp } from "../services/stale-udp.ts";
import type { Pass, StepContext, StepModule } from "./step.ts";

export const servicesStep: StepModule<"services"> = {
  name: "services",
  create(ctx) {
    return new ServicesStep(ctx);
  },
};

class ServicesStep {
  private proxy?: ServiceProxy;
  private readonly health = new HealthCheckServers();
  private removed = false;

  constructor(private readonly ctx: StepContext) {}

  run(p: Pass): void {
    const { cfg, deps } = this.ctx;
    const { r } = p;
    if (!cfg.serviceProxy) {
      if (this.removed) return;
      // Once per run: a table left by a run with --service-proxy goes (the rollback).
      const nl = Nftables.open();
      try {
        if (nl.table(SERVICES.family, SERVICES.name)) {
          deps.nft.apply(`delete table ${SERVICES.family} ${SERVICES.name}\n`, `delete table ${SERVICES.family} ${SERVICES.name}`);
          r.writes++;
          r.changes.push(`delete table ${SERVICES.family} ${SERVICES.name} (--service-proxy is off)`);
        }
      } finally {
        nl.close();
      }
      this.removed = true;
      return;
    }
    this.proxy ??= new ServiceProxy({ nodeName: cfg.nodeName, clusterCidr: cfg.clusterCidr, nodeportAddresses: cfg.nodeportAddresses ?? [], nft: deps.nft });
    const known = p.state.unknown?.filter((u) => u.kind === "Service" || u.kind === "EndpointSlice") ?? [];
    if (known.length) {
      r.problems.push(`cannot proxy Services: ${known.map((u) => `${u.kind} cannot be read (${u.why})`).join("; ")}; keeping the Service table as it is`);
      return;
    }
    let sync;
    try {
      sync = this.proxy.sync(p.state, p.localAddrs.map((a) => a.address));
    } catch (e) {
      this.proxy.reset();
      throw e;
    }
    r.writes += sync.writes;
    r.changes.push(...sync.changes);
    // A refused element (two Services claiming one external IP and port) leaves out that key
    // only: a warning, as policy's refused objects are, not a node that is not ready.
    r.warnings.push(...sync.rejected);
    if (sync.staleUdp.length) {
      const n = forgetStaleUdp(sync.staleUdp);
      if (n) r.changes.push(`delete ${n} conntrack entr${n === 1 ? "y" : "ies"} of UDP endpoints that went away`);
    }
    const h = this.health.update(sync.health);
    r.changes.push(...h.changes);
    r.warnings.push(...h.problems);
  }
}
