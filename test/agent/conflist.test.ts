import { describe, expect, test } from "bun:test";
import { renderConflist } from "../../src/agent/conflist.ts";
import { parsePluginConf } from "../../src/plugin/netconf.ts";

const base = { mode: "bridge" as const, bridge: "cbr0", mtu: 1500, ipamDataDir: "/d", cniLogFile: "/l", chainPortmap: false };

describe("renderConflist", () => {
  test("single-stack: one range, one default route, readable by the plugin's config parser", () => {
    const c = renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"] });
    expect(c).toMatchObject({ cniVersion: "1.1.0", name: "mncni" });
    expect(c.plugins).toHaveLength(1);
    const p = c.plugins[0]!;
    expect(p.ipam).toEqual({ type: "mncni-ipam", ranges: [[{ subnet: "10.244.1.0/24" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: "/d" });
    const parsed = parsePluginConf({ cniVersion: c.cniVersion, name: c.name, ...p } as any, {});
    expect(parsed.mode).toBe("bridge");
    expect(parsed.ipMasq).toBe(false);
  });

  test("dual-stack keeps the Node's order; routed mode; portmap chained on request", () => {
    const c = renderConflist({ ...base, mode: "routed", chainPortmap: true, podCIDRs: ["fd00:1::/64", "10.244.1.0/24"] });
    expect((c.plugins[0]!.ipam as any).ranges).toEqual([[{ subnet: "fd00:1::/64" }], [{ subnet: "10.244.1.0/24" }]]);
    expect((c.plugins[0]!.ipam as any).routes).toEqual([{ dst: "::/0" }, { dst: "0.0.0.0/0" }]);
    expect(c.plugins[0]!.mode).toBe("routed");
    expect(c.plugins[1]).toEqual({ type: "portmap", capabilities: { portMappings: true }, snat: true });
  });

  test("names the agent's CNI socket when it serves one, and the plugin accepts the field", () => {
    expect(renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"] }).plugins[0]).not.toHaveProperty("agentSocket");
    const c = renderConflist({ ...base, podCIDRs: ["10.244.1.0/24"], cniSocket: "/run/mncni/cni.sock" });
    expect(c.plugins[0]!.agentSocket).toBe("/run/mncni/cni.sock");
    expect(() => parsePluginConf({ cniVersion: c.cniVersion, name: c.name, ...c.plugins[0]! } as any, {})).not.toThrow();
  });
});
