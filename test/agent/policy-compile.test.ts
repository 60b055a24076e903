// The compiler and the plan, pure: which pods get chains, how named ports and peers the
// engine does not enforce come out, and when the kernel is left alone. (The traffic tests in
// policy.integration.test.ts show the rules doing what they say.)
import { describe, expect, test } from "bun:test";
import { buildClusterState } from "../../src/cluster/build-state.ts";
import type { KubeObject } from "../../src/cluster/types.ts";
import { compilePolicy, planPolicy } from "../../src/agent/policy/index.ts";
import type { NftRuleset } from "../../src/agent/nft-ruleset.ts";

const pod = (ns: string, name: string, node: string, ip: string, labels: Record<string, string> = {}, ports: { name: string; containerPort: number; protocol?: "TCP" | "UDP" }[] = []): KubeObject => ({
  kind: "Pod", metadata: { name, namespace: ns, labels }, spec: { nodeName: node, containers: [{ ports }] }, status: { podIP: ip },
});
const EMPTY: NftRuleset = { tables: [], chains: [], rules: [] };

describe("policy compiler", () => {
  const base = [
    pod("x", "a", "n1", "10.0.1.2", { app: "a" }),
    pod("x", "b", "n1", "10.0.1.3", { app: "b" }),
    pod("y", "c", "n2", "10.0.2.2", { app: "c" }, [{ name: "http", containerPort: 8080 }]),
    pod("y", "d", "n2", "fd00::2", { app: "c" }, [{ name: "http", containerPort: 9090 }]),
  ];

  test("only pods a policy selects get chains, and only on their node", () => {
    const s = buildClusterState([...base, { kind: "NetworkPolicy", metadata: { name: "p", namespace: "x" }, spec: { podSelector: { matchLabels: { app: "a" } } } }]);
    const n1 = compilePolicy({ state: s, nodeName: "n1" });
    expect(n1.selected).toEqual({ ingress: ["x/a"], egress: [] });
    expect(n1.body).toContain("10.0.1.2 : jump ingress/x/a");
    expect(n1.body).not.toContain("ingress/x/b");
    expect(compilePolicy({ state: s, nodeName: "n2" }).selected).toEqual({ ingress: [], egress: [] });
  });

  test("an egress named port resolves on each destination pod, per family", () => {
    const s = buildClusterState([...base, { kind: "NetworkPolicy", metadata: { name: "p", namespace: "x" }, spec: {
      podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }],
    } }]);
    const body = compilePolicy({ state: s, nodeName: "n1" }).body;
    expect(body).toContain("ip daddr { 10.0.2.2 } meta l4proto tcp th dport 8080 counter return");
    expect(body).toContain("ip6 daddr { fd00::2 } meta l4proto tcp th dport 9090 counter return");
  });

  test("unenforced CNP peers fail closed: Accept matches nothing, Deny matches everything", () => {
    const cnp = (action: "Accept" | "Deny"): KubeObject => ({ kind: "ClusterNetworkPolicy", metadata: { name: `n-${action}` }, spec: {
      tier: "Admin", priority: 1, subject: { namespaces: {} }, egress: [{ action, to: [{ nodes: {} }] }],
    } });
    const accept = compilePolicy({ state: buildClusterState([...base, cnp("Accept")]), nodeName: "n1" }).body;
    expect(accept).not.toContain("counter return comment");
    const deny = compilePolicy({ state: buildClusterState([...base, cnp("Deny")]), nodeName: "n1" }).body;
    expect(deny).toMatch(/^\s+counter drop comment "cnp Admin n-Deny egress\[0\]"$/m);
  });

  test("plan: the same result again writes nothing; nothing selected removes the table", () => {
    const s = buildClusterState([...base, { kind: "NetworkPolicy", metadata: { name: "p", namespace: "x" }, spec: { podSelector: {} } }]);
    const c = compilePolicy({ state: s, nodeName: "n1" });
    const first = planPolicy(c, EMPTY);
    expect(first.script).toStartWith("table inet mncni-policy {}\ndelete table inet mncni-policy\ntable inet mncni-policy {");
    const installed: NftRuleset = {
      tables: [{ family: "inet", name: "mncni-policy" }], chains: [],
      rules: [{ family: "inet", table: "mncni-policy", chain: "forward", handle: 3, comment: `mncni-policy ruleset ${c.hash}` }],
    };
    expect(planPolicy(c, installed).script).toBe("");
    const none = compilePolicy({ state: buildClusterState(base), nodeName: "n1" });
    expect(planPolicy(none, installed).script).toBe("delete table inet mncni-policy\n");
    expect(planPolicy(none, EMPTY).script).toBe("");
  });
});
