// Step "binaries": the CNI plugins this agent ships, installed in --cni-bin-dir (skipped when
// the agent runs from source).
import { BinaryInstaller } from "../install.ts";
import type { Pass, StepModule } from "./step.ts";

export const binariesStep: StepModule<"binaries"> = {
  name: "binaries",
  create({ cfg, deps }) {
    const installer = deps.binary ? new BinaryInstaller(deps.binary, cfg.cniBinDir) : undefined;
    return {
      run(p: Pass) {
        if (!installer) return;
        for (const path of installer.ensure()) {
          p.r.writes++;
          p.r.changes.push(`install ${path}`);
        }
      },
    };
  },
};
