// Step "antiSpoofing": the plugin's anti-spoofing sets hold every guarded pod's MAC and
// addresses again when something removed them (a flushed set drops every packet of the pods
// it guarded, as a deleted route would cut them off). What each pod may use is the plugin's
// record on its port element (src/plugin/antispoof.ts); the agent only puts back what that
// record names, and leaves adding and removing pods to the plugin and its GC.
import type { Pass, StepModule } from "./step.ts";

export const antiSpoofingStep: StepModule<"antiSpoofing"> = {
  name: "antiSpoofing",
  create({ deps }) {
    return {
      run(p: Pass) {
        const repaired = deps.antiSpoof?.repair() ?? [];
        if (!repaired.length) return;
        p.r.writes++;
        p.r.changes.push(`repair anti-spoofing elements: ${repaired.join(", ")}`);
      },
    };
  },
};
