// Step "fastPath": the plain-pods map of the eBPF fast path (src/agent/fast-path/), in the pass
// that programs policy, after the policy and Service steps: a pod a policy now selects, a held
// pod, a Service backend leaves the map in the pass that sees it. Without --fast-path, what an
// earlier run left is removed.
import { fastPathPods } from "../fast-path/plain.ts";
import type { Pass, StepModule } from "./step.ts";

export const fastPathStep: StepModule<"fastPath"> = {
  name: "fastPath",
  create(ctx) {
    const { cfg, deps } = ctx;
    return {
      run(p: Pass) {
        const node = deps.fastPath;
        if (!node) return;
        let changes: string[];
        try {
          changes = cfg.fastPath ? node.sync(fastPathPods({ state: p.state, nodeName: cfg.nodeName, held: new Set(heldAddresses(deps.hold)), devices: node.devices() }).values()) : node.remove();
        } catch (e) {
          // A map not brought in line may still hold a pod a policy now selects: every pod
          // takes the stack until a pass succeeds.
          if (cfg.fastPath) p.r.changes.push(...node.emptyMap());
          throw e;
        }
        p.r.changes.push(...changes);
        p.r.writes += changes.length;
      },
    };
  },
};

function heldAddresses(hold: { held(): string[] } | undefined): string[] {
  try {
    return hold?.held() ?? [];
  } catch {
    return []; // no hold table: nothing is held
  }
}
