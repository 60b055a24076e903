import { describe, expect, test } from "bun:test";
import { planMasquerade, planMasqueradeRemoval } from "../../src/agent/masquerade.ts";
import type { NftRuleset } from "../../src/agent/nft-ruleset.ts";

const empty: NftRuleset = { tables: [], chains: [], rules: [] };
const input = { podCIDRs: ["10.244.1.0/24", "fd00:0:0:1::/64"], podNetworks: ["10.244.0.0/16", "fd00::/48", "10.244.2.0/24"], nonMasquerade: ["10.244.0.0/16", "192.168.0.0/16"] };

/** The ruleset as the kernel would report it after applying a plan (only the parts the planner reads). */
function installed(script: string): NftRuleset {
  const comment = script.match(/comment "(mncni masquerade [0-9a-f]+)"/)![1];
  return {
    tables: [{ family: "inet", name: "mncni", comment }],
    chains: [{ family: "inet", table: "mncni", name: "postrouting", handle: 1, hook: "postrouting", policy: "accept" }],
    rules: [],
  };
}

describe("planMasquerade", () => {
  test("renders one atomic replacement of table inet mncni, dual-stack", () => {
    const p = planMasquerade(input, empty);
    expect(p.changes).toEqual(["replace table inet mncni"]);
    expect(p.script.startsWith("table inet mncni {}\ndelete table inet mncni\ntable inet mncni {\n")).toBe(true);
    // pod-to-pod (whole pod network) and link-local never masqueraded; covered CIDRs collapsed.
    expect(p.script).toContain('ip saddr { 10.244.1.0/24 } ip daddr != { 10.244.0.0/16, 169.254.0.0/16, 192.168.0.0/16 } counter masquerade');
    expect(p.script).toContain('ip6 saddr { fd00:0:0:1::/64 } ip6 daddr != { fd00::/48, fe80::/10 } counter masquerade');
    expect(p.script).toContain("ip saddr { 10.244.0.0/16 } counter accept");
    expect(p.script).toContain("ip6 daddr { fd00::/48 } counter accept");
    expect(p.script).not.toContain("flush");
  });

  test("no change when the installed hash matches: zero writes", () => {
    const first = planMasquerade(input, empty);
    expect(planMasquerade(input, installed(first.script))).toEqual({ script: "", changes: [] });
    expect(planMasquerade({ ...input, podCIDRs: ["10.244.1.0/24"] }, installed(first.script)).script).not.toBe("");
  });

  test("a node without pod CIDRs masquerades nothing", () => {
    expect(planMasquerade({ podCIDRs: [], podNetworks: ["10.244.0.0/16"], nonMasquerade: [] }, empty).script).not.toContain("masquerade comment");
  });

  test("foreign forward chains with policy drop get accept rules; others are left alone", () => {
    const current: NftRuleset = {
      tables: [{ family: "ip", name: "filter" }, { family: "inet", name: "fw" }, { family: "ip6", name: "f6" }],
      chains: [
        { family: "ip", table: "filter", name: "FORWARD", handle: 1, hook: "forward", policy: "drop" },
        { family: "inet", table: "fw", name: "fwd", handle: 1, hook: "forward", policy: "accept" },
        { family: "ip6", table: "f6", name: "fwd", handle: 1, hook: "forward", policy: "drop" },
      ],
      rules: [],
    };
    const p = planMasquerade(input, current);
    const foreign = p.script.split("\n").filter((l) => l.startsWith("insert rule"));
    expect(foreign).toHaveLength(4);
    expect(foreign.filter((l) => l.startsWith("insert rule ip filter FORWARD ip saddr { 10.244.0.0/16 }"))).toHaveLength(1);
    expect(foreign.filter((l) => l.startsWith("insert rule ip6 f6 fwd ip6"))).toHaveLength(2);
    expect(p.script).not.toContain("inet fw");
    // Applied once: the rules are found by their comment and not inserted again.
    const comment = foreign[0]!.match(/comment "(.*)"/)![1];
    const after: NftRuleset = {
      ...current,
      rules: [1, 2].map((h) => ({ family: "ip", table: "filter", chain: "FORWARD", handle: h, comment })).concat([3, 4].map((h) => ({ family: "ip6", table: "f6", chain: "fwd", handle: h, comment }))),
    };
    expect(planMasquerade(input, after).script).not.toMatch(/(insert|delete) rule/);
    // When the pod network changes, the stale rules are deleted by handle and new ones inserted.
    const changed = planMasquerade({ ...input, podNetworks: ["10.245.0.0/16"] }, after).script;
    expect(changed).toContain("delete rule ip filter FORWARD handle 1");
    expect(changed).toContain("insert rule ip filter FORWARD ip saddr { 10.244.1.0/24, 10.245.0.0/16 }");
  });

  test("removal deletes our table and our rules only", () => {
    const s = planMasqueradeRemoval({
      tables: [{ family: "inet", name: "mncni" }, { family: "ip", name: "filter" }],
      chains: [],
      rules: [
        { family: "ip", table: "filter", chain: "FORWARD", handle: 7, comment: "mncni-agent forward-accept abc" },
        { family: "ip", table: "filter", chain: "FORWARD", handle: 8, comment: "someone else" },
      ],
    });
    expect(s).toBe("delete table inet mncni\ndelete rule ip filter FORWARD handle 7\n");
  });
});
