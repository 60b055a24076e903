// One reconcile pass: desired state from the cluster state, diffed against the kernel and
// the filesystem, only the differences applied. The steps (src/agent/steps/, one module each)
// run in the order of STEPS; each step's errors are collected (never swallowed) and the pass
// goes on, so one broken peer does not block the rest.
import type { ClusterState } from "../cluster/types.ts";
import { routingBackends } from "./routing/index.ts";
import { STEP_MODULES, type AgentSettings, type ReconcileReport, type ReconcilerDeps, type StepContext, type StepRun } from "./steps/index.ts";
import { emptyReconcileReport, type Pass } from "./steps/step.ts";

export { STEPS, type AgentSettings, type ReconcileReport, type ReconcilerDeps, type Step, type Sysctl } from "./steps/index.ts";

export class Reconciler {
  private readonly steps: { name: string; needsAdmission: boolean; run: StepRun }[];

  constructor(cfg: AgentSettings, deps: ReconcilerDeps) {
    const all = routingBackends(cfg.routingSettings);
    const ctx: StepContext = { cfg, deps, routing: { active: all[cfg.routing], all: Object.values(all) }, ownInUse: {} };
    this.steps = STEP_MODULES.map((m) => ({ name: m.name, needsAdmission: m.needsAdmission ?? false, run: m.create(ctx) }));
  }

  reconcile(state: ClusterState): ReconcileReport {
    const r = emptyReconcileReport();
    const p: Pass = { state, r, localAddrs: [], own: [], failed: new Set() };
    for (const s of this.steps) {
      if (s.needsAdmission && !p.admitted) continue;
      try {
        s.run.run(p);
      } catch (e) {
        r.errors.push({ step: s.name, message: (e as Error).message });
        p.failed.add(s.name);
      }
    }
    for (const s of this.steps) s.run.finish?.(p);
    r.converged = r.errors.length === 0 && r.problems.length === 0 && r.conflistWritten;
    return r;
  }

  /**
   * A served ADD's pod, before the ADD is answered: every step with a fast path for it (policy:
   * its addresses laid over the state, its policy programmed, its hold released). Returns what changed.
   */
  programAttachedPod(state: ClusterState, namespace: string, name: string, ips: string[]): string[] {
    return this.steps.flatMap((s) => s.run.attachedPod?.(state, { namespace, name, ips }) ?? []);
  }
}
