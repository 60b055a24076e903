// Step "forwarding": IP forwarding on (IPv6 too when a pod CIDR or the cluster CIDR is IPv6).
import { familyOf } from "../../net/ip.ts";
import type { Pass, StepModule } from "./step.ts";

export const forwardingStep: StepModule<"forwarding"> = {
  name: "forwarding",
  needsAdmission: true,
  create({ cfg, deps }) {
    return {
      run(p: Pass) {
        const v6 = [...p.own, ...cfg.clusterCidr].some((c) => familyOf(c) === 6);
        const want = ["net.ipv4.ip_forward", ...(v6 ? ["net.ipv6.conf.all.forwarding"] : [])];
        for (const name of want) {
          if (deps.sysctl.get(name) === "1") continue;
          deps.sysctl.set(name, "1");
          p.r.writes++;
          p.r.changes.push(`set ${name}=1`);
        }
      },
    };
  },
};
