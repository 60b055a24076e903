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

  test("a configure that rejects is never left unhandled: when a later one throws, or an earlier one rejects first", async () => {
    const unhandled: unknown[] = [];
    const note = (e: unknown) => void unhandled.push(e);
    process.on("unhandledRejection", note);
    try {
      const net = { cniVersion: "1.1.0", name: "n", type: "mncni" };
      const rejecting = (name: string, why: string): Feature => ({ name, configure: () => Promise.reject(new Error(why)) });
      // The fast path's import fails while hostPort's configure refuses the config: the call fails with hostPort's error.
      const throwing: Feature = { name: "hostPort", configure: () => { throw new Error("hostPort refused"); } };
      await expect(configureFeatures(net, { fastPath: rejecting("fastPath", "import failed"), hostPort: throwing })).rejects.toThrow("hostPort refused");
      // Two rejections: the first in list order is the call's, the other is not left over.
      await expect(configureFeatures(net, { bandwidth: rejecting("bandwidth", "first"), fastPath: rejecting("fastPath", "second") })).rejects.toThrow("first");
      // Unhandled rejections are reported once the microtasks have run: two turns of the event loop.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
      expect(unhandled.map((e) => (e as Error).message)).toEqual([]);
    } finally {
      process.off("unhandledRejection", note);
    }
  });
});
