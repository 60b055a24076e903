import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { ChainVersionPicker, DEFAULT_CONFLIST_VERSION, chainPluginTypes, highestCommonVersion } from "../../src/agent/cni-version.ts";
import { conflistFor, renderConflist } from "../../src/agent/conflist.ts";
import { configureFeatures } from "../../src/plugin/features/list.ts";
import { parsePluginConf } from "../../src/plugin/netconf.ts";

const base = { cniVersion: "1.1.0", mode: "bridge" as const, bridge: "cbr0", mtu: 1500, ipamDataDir: "/d", cniLogFile: "/l", chainPortmap: false };

describe("renderConflist", () => {
  test("single-stack: one range, one default route, readable by the plugin's config parser", async () => {
    const c = renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"] });
    expect(c).toMatchObject({ cniVersion: "1.1.0", name: "mncni" });
    expect(c.plugins).toHaveLength(1);
    const p = c.plugins[0]!;
    expect(p.ipam).toEqual({ type: "mncni-ipam", ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: "/d" });
    const parsed = parsePluginConf({ cniVersion: c.cniVersion, name: c.name, ...p } as any, {});
    expect(parsed.mode).toBe("bridge");
    expect((await configureFeatures(parsed.net, undefined)).map((f) => f.name)).not.toContain("ipMasq");
    // Built in: the runtime passes hostPorts, bandwidth annotations, requested IPs and MAC.
    expect(p.capabilities).toEqual({ portMappings: true, bandwidth: true, ips: true, mac: true });
  });

  test("dual-stack keeps the Node's order; routed mode; portmap chained on request", () => {
    const c = renderConflist({ ...base, mode: "routed", chainPortmap: true, podCIDRs: ["fd00:1::/64", "10.244.1.0/24"] });
    expect((c.plugins[0]!.ipam as any).ranges).toEqual([[{ subnet: "fd00:1::/64" }], [{ subnet: "10.244.1.0/24" }]]);
    expect((c.plugins[0]!.ipam as any).routes).toEqual([{ dst: "::/0" }, { dst: "0.0.0.0/0" }]);
    expect(c.plugins[0]!.mode).toBe("routed");
    expect(c.plugins[1]).toEqual({ type: "portmap", capabilities: { portMappings: true }, snat: true });
    // The chained portmap maps the ports: mncni does not ask for them too.
    expect(c.plugins[0]!.capabilities).toEqual({ portMappings: false, bandwidth: true, ips: true, mac: true });
  });

  test("fastPath only with the fast path on, and the plugin accepts the field", () => {
    expect(renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"] }).plugins[0]).not.toHaveProperty("fastPath");
    const c = renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"], fastPath: true });
    expect(c.plugins[0]!.fastPath).toBe(true);
    expect(() => parsePluginConf({ cniVersion: c.cniVersion, name: c.name, ...c.plugins[0]! } as any, {})).not.toThrow();
  });

  test("names the agent's CNI socket when it serves one, and the plugin accepts the field", () => {
    expect(renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"] }).plugins[0]).not.toHaveProperty("agentSocket");
    const c = renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"], cniSocket: "/run/mncni/cni.sock" });
    expect(c.plugins[0]!.agentSocket).toBe("/run/mncni/cni.sock");
    expect(() => parsePluginConf({ cniVersion: c.cniVersion, name: c.name, ...c.plugins[0]! } as any, {})).not.toThrow();
  });
});

describe("the conflist's cniVersion", () => {
  const dir = mkdtempSync(`/tmp/mncni-version-test-${process.pid}-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** A plugin executable that answers VERSION with `versions` and counts how often it was asked. */
  const plugin = (name: string, versions: string[] | string) => {
    const answer = typeof versions === "string" ? versions : JSON.stringify({ cniVersion: versions.at(-1), supportedVersions: versions });
    writeFileSync(`${dir}/${name}`, `#!/bin/sh\necho x >> ${dir}/${name}.asked\n[ "$CNI_COMMAND" = VERSION ] || exit 9\ncat >/dev/null\necho '${answer}'\n`, { mode: 0o755 });
  };
  const asked = (name: string) => readFileSync(`${dir}/${name}.asked`, "utf8").split("\n").filter(Boolean).length;

  test("the highest version every list has; none when they share nothing usable for a list", () => {
    expect(highestCommonVersion([["0.3.1", "0.4.0", "1.0.0", "1.1.0"], ["0.4.0", "1.0.0"]])).toBe("1.0.0");
    expect(highestCommonVersion([["1.1.0"], ["0.4.0", "1.0.0"]])).toBeUndefined();
    // 0.1.0 and 0.2.0 predate network lists.
    expect(highestCommonVersion([["0.1.0", "0.2.0"]])).toBeUndefined();
  });

  test("not above 1.0.0 by default, though every plugin speaks 1.1.0: containerd 1.6/1.7 refuse a 1.1.0 list (#29)", () => {
    expect(DEFAULT_CONFLIST_VERSION).toBe("1.0.0");
    expect(highestCommonVersion([["0.4.0", "1.0.0", "1.1.0"], ["1.0.0", "1.1.0"]])).toBe("1.0.0");
    expect(highestCommonVersion([["0.4.0", "1.0.0", "1.1.0"], ["1.0.0", "1.1.0"]], "1.1.0")).toBe("1.1.0");
    // mncni alone, not installed yet (this build's versions): the list still says 1.0.0.
    const out = conflistFor({ ...base, podCIDRs: ["10.244.1.0/24"] }, undefined, new ChainVersionPicker(`${dir}/empty`));
    expect("text" in out && JSON.parse(out.text).cniVersion).toBe("1.0.0");
  });

  test("the plugins asked: each chained type and a delegated IPAM, not mncni-ipam (it runs inside mncni)", () => {
    const c = renderConflist({ ...base, chainPortmap: true, podCIDRs: ["10.244.1.0/24"] });
    expect(chainPluginTypes(c.plugins)).toEqual(["mncni", "portmap"]);
    expect(chainPluginTypes([{ type: "mncni", ipam: { type: "host-local" } }, { type: "tuning" }])).toEqual(["mncni", "host-local", "tuning"]);
  });

  test("asks the installed plugins, once per file version; mncni not installed yet counts as this build", () => {
    plugin("portmap", ["0.3.0", "0.4.0", "1.0.0"]);
    const picker = new ChainVersionPicker(dir);
    const opts = { ...base, chainPortmap: true, podCIDRs: ["10.244.1.0/24"] };
    const out = conflistFor(opts, undefined, picker);
    expect("text" in out && JSON.parse(out.text).cniVersion).toBe("1.0.0");
    conflistFor(opts, undefined, picker);
    expect(asked("portmap")).toBe(1);
    // A new portmap (another file) is asked again.
    rmSync(`${dir}/portmap`);
    plugin("portmap", ["0.4.0"]);
    const again = conflistFor(opts, undefined, picker);
    expect("text" in again && JSON.parse(again.text).cniVersion).toBe("0.4.0");
    // A pinned version asks nobody.
    const pinned = conflistFor(opts, "0.3.1", picker);
    expect("text" in pinned && JSON.parse(pinned.text).cniVersion).toBe("0.3.1");
    expect(asked("portmap")).toBe(2);
  });

  test("an installed mncni is asked too", () => {
    plugin("mncni", ["0.4.0", "1.0.0"]);
    plugin("portmap", ["0.4.0", "1.0.0", "1.1.0"]);
    const out = conflistFor({ ...base, chainPortmap: true, podCIDRs: ["10.244.1.0/24"] }, undefined, new ChainVersionPicker(dir));
    expect("text" in out && JSON.parse(out.text).cniVersion).toBe("1.0.0");
    rmSync(`${dir}/mncni`);
  });

  test("a plugin that answers nonsense, or shares no version: a problem naming it, no text", () => {
    plugin("portmap", "not json");
    const opts = { ...base, chainPortmap: true, podCIDRs: ["10.244.1.0/24"] };
    expect(conflistFor(opts, undefined, new ChainVersionPicker(dir))).toEqual({ problem: `cannot ask plugin "${dir}/portmap" for its CNI versions: answer is not JSON: "not json"` });
    plugin("portmap", ["0.1.0"]);
    expect(conflistFor(opts, undefined, new ChainVersionPicker(dir))).toEqual({ problem: "cannot pick a cniVersion for plugins mncni, portmap: no version is supported by all of them" });
  });
});
