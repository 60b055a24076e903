// The per-pod features, in the order their hooks run at each point of ADD, DEL, CHECK and
// GC (feature.ts). Adding a feature: one file in this folder, one entry here.
import type { NetConf } from "../../cni/types.ts";
import type { ConfiguredFeature, Feature, FeatureOverrides } from "../feature.ts";
import { antiSpoofing } from "./anti-spoofing.ts";
import { bandwidth } from "./bandwidth.ts";
import { conntrackCleanup } from "./conntrack-cleanup.ts";
import { fastPath } from "./fast-path.ts";
import { hostPort } from "./host-port.ts";
import { ipMasq } from "./ip-masq.ts";
import { policyHold } from "./policy-hold.ts";

export const FEATURES: readonly Feature[] = [antiSpoofing, policyHold, ipMasq, bandwidth, fastPath, hostPort, conntrackCleanup];

/** The features under a mode: the list with the mode's replacements, in list order (an override of an unknown name is an error). */
export function featuresUnder(overrides: FeatureOverrides | undefined): readonly Feature[] {
  if (!overrides) return FEATURES;
  for (const name of Object.keys(overrides)) {
    if (!FEATURES.some((f) => f.name === name)) throw new TypeError(`cannot override feature "${name}": no such feature`);
  }
  return FEATURES.flatMap((f) => {
    const o = Object.hasOwn(overrides, f.name) ? overrides[f.name] : f;
    return o ? [o] : [];
  });
}

/** The features on for one call, in list order, each with its settings bound (see Feature.configure). */
export async function configureFeatures(net: NetConf, overrides: FeatureOverrides | undefined, o: { cleanup?: boolean } = {}): Promise<readonly ConfiguredFeature[]> {
  const cleanup = o.cleanup === true;
  // Every configure runs (and validates) before any is awaited, as when all were synchronous.
  // A promise is marked handled as soon as it is made: when a later configure throws, or an
  // earlier one rejects first, it is never awaited, and its rejection (an import that failed)
  // would be an unhandled one, which ends the process (Bun's default): a plugin exits 1 with
  // a stack on stderr, and a resident server (`mncni serve`, the agent) dies with the call.
  const features = featuresUnder(overrides);
  const configured = features.map((f) => {
    const c = f.configure(net, { cleanup });
    if (c instanceof Promise) c.catch(() => {});
    return c;
  });
  const out: ConfiguredFeature[] = [];
  for (const [i, c] of configured.entries()) {
    const on = await c;
    if (on) out.push(Object.freeze({ ...on, name: features[i]!.name }));
  }
  return out;
}
