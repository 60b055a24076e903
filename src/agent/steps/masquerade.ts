// Step "masquerade": pod traffic leaving the pod networks is masqueraded (src/agent/masquerade.ts plans it).
import { planMasquerade } from "../masquerade.ts";
import { listedRuleset, type Pass, type StepModule } from "./step.ts";

export const masqueradeStep: StepModule<"masquerade"> = {
  name: "masquerade",
  needsAdmission: true,
  create({ cfg, deps }) {
    return {
      run(p: Pass) {
        const podNetworks = [...cfg.clusterCidr, ...[...p.admitted!.podCIDRs.values()].flat()];
        const plan = planMasquerade({ podCIDRs: p.own, podNetworks, nonMasquerade: cfg.nonMasqueradeCidr }, listedRuleset(p, deps.nft));
        if (!plan.script) return;
        deps.nft.apply(plan.script, "apply nftables ruleset");
        p.r.writes++;
        p.r.changes.push(...plan.changes);
      },
    };
  },
};
