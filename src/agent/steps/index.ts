// The steps of a reconcile pass, in the order they run: metrics and logs name them the same.
// A new thing the agent keeps in line is one module here and one entry in this list.
import { antiSpoofingStep } from "./anti-spoofing.ts";
import { binariesStep } from "./binaries.ts";
import { bridgeNetfilterStep } from "./bridge-netfilter.ts";
import { conflistStep } from "./conflist.ts";
import { fastPathStep } from "./fast-path.ts";
import { forwardingStep } from "./forwarding.ts";
import { masqueradeStep } from "./masquerade.ts";
import { podCidrsStep } from "./pod-cidrs.ts";
import { policyStep } from "./policy.ts";
import { routesStep } from "./routes.ts";
import { servicesStep } from "./services.ts";
import { staleSandboxesStep } from "./stale-sandboxes.ts";

export const STEP_MODULES = [podCidrsStep, forwardingStep, bridgeNetfilterStep, routesStep, masqueradeStep, policyStep, servicesStep, fastPathStep, antiSpoofingStep, binariesStep, conflistStep, staleSandboxesStep] as const;

export type Step = (typeof STEP_MODULES)[number]["name"];
export const STEPS: readonly Step[] = STEP_MODULES.map((s) => s.name);

export type { AgentSettings, AttachedPod, Pass, ReconcileReport, ReconcilerDeps, StepContext, StepModule, StepRun, Sysctl } from "./step.ts";
