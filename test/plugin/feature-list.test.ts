// The per-pod feature list under a mode's overrides (src/plugin/features/list.ts): a mode
// replaces a feature by name in its place, leaves one out with null, and cannot name one
// that does not exist; configure() leaves out what a config turns off.
import { describe, expect, test } from "bun:test";
import type { Feature } from "../../src/plugin/feature.ts";
import { configureFeatures, FEATURES, featuresUnder } from "../../src/plugin/features/list.ts";

const names = (fs: readonly { name: string }[]) => fs.map((f) => f.name);

describe("features under a mode", () => {
  test("no override: the list itself", () => {
    expect(featuresUnder(undefined)).toBe(FEATURES);
    expect(names(FEATURES)).toEqual(["antiSpoofing", "policyHold", "ipMasq", "bandwidth", "fastPath", "hostPort", "conntrackCleanup"]);
  });

  test("a replacement takes the feature's place; null leaves it out; an unknown name is refused", () => {
    const mine: Feature = { name: "bandwidth", configure: () => ({}) };
    const under = featuresUnder({ bandwidth: mine, antiSpoofing: null });
    expect(names(under)).toEqual(["policyHold", "ipMasq", "bandwidth", "fastPath", "hostPort", "conntrackCleanup"]);
    expect(under[2]).toBe(mine);
    expect(() => featuresUnder({ nope: mine })).toThrow(`cannot override feature "nope"`);
  });

  test("configure: the config turns features on and off; DEL/GC (cleanup) keep the always-on ones", async () => {
    const net = { cniVersion: "1.1.0", name: "n", type: "mncni" };
    expect(names(await configureFeatures(net, undefined))).toEqual(["antiSpoofing", "bandwidth", "hostPort", "conntrackCleanup"]);
    expect(names(await configureFeatures({ ...net, antiSpoofing: false, ipMasq: true, policyHold: true }, undefined))).toEqual(["policyHold", "ipMasq", "bandwidth", "hostPort", "conntrackCleanup"]);
    // A feature whose modules are imported on demand (the fast path) keeps its place in the list.
    expect(names(await configureFeatures({ ...net, fastPath: true }, undefined))).toEqual(["antiSpoofing", "bandwidth", "fastPath", "hostPort", "conntrackCleanup"]);
    // An invalid runtimeConfig fails ADD's configure, not DEL's.
    const bad = { ...net, runtimeConfig: { portMappings: "x" } };
    await expect(configureFeatures(bad, undefined)).rejects.toThrow("runtimeConfig.portMappings");
    expect(names(await configureFeatures(bad, undefined, { cleanup: true }))).toContain("hostPort");
  });
});
