// The fingerprint an agent serves of what its policies were programmed from, and `lab check`
// computes from its own read: equal for equal inputs read in any order, different when
// anything a policy resolves against changes, "none" without policies.
import { describe, expect, test } from "bun:test";
import { buildClusterState, NO_POLICY_INPUTS, policyInputs, type KubeObject } from "../../src/cluster/index.ts";

const ns = (name: string, labels: Record<string, string> = {}): KubeObject => ({ kind: "Namespace", metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...labels } } });
const pod = (name: string, labels: Record<string, string>, ip: string): KubeObject => ({
  kind: "Pod", metadata: { name, namespace: "x", labels }, spec: { nodeName: "n1", containers: [{ ports: [{ name: "http", containerPort: 80 }] }] }, status: { phase: "Running", podIPs: [{ ip }] },
});
const deny = (name: string, app: string): KubeObject => ({ kind: "NetworkPolicy", metadata: { name, namespace: "x" }, spec: { podSelector: { matchLabels: { app } } } });

describe("policyInputs", () => {
  const objs = [ns("x"), pod("a", { app: "a", tier: "web" }, "10.244.0.2"), pod("b", { app: "b" }, "10.244.0.3"), deny("deny-a", "a")];

  test("no policy: none, whatever the pods are", () => {
    expect(policyInputs(buildClusterState(objs.slice(0, 3)))).toBe(NO_POLICY_INPUTS);
    expect(policyInputs(buildClusterState(objs.slice(0, 2)))).toBe(NO_POLICY_INPUTS);
  });

  test("the same objects in another order, labels written in another order: the same fingerprint", () => {
    const one = policyInputs(buildClusterState(objs));
    const reordered = [...objs].reverse().map((o) => (o.metadata.name === "a" ? pod("a", { tier: "web", app: "a" }, "10.244.0.2") : o));
    expect(one).not.toBe(NO_POLICY_INPUTS);
    expect(policyInputs(buildClusterState(reordered))).toBe(one);
  });

  test("a pod's label or address, a namespace's label, a policy's spec: each changes it", () => {
    const one = policyInputs(buildClusterState(objs));
    const changed = [
      [ns("x"), pod("a", { app: "a", tier: "db" }, "10.244.0.2"), objs[2]!, objs[3]!],
      [ns("x"), pod("a", { app: "a", tier: "web" }, "10.244.0.9"), objs[2]!, objs[3]!],
      [ns("x", { team: "t" }), ...objs.slice(1)],
      [...objs.slice(0, 3), deny("deny-a", "b")],
      [...objs, deny("deny-b", "b")],
    ];
    const prints = changed.map((o) => policyInputs(buildClusterState(o)));
    for (const p of prints) expect(p).not.toBe(one);
    expect(new Set(prints).size).toBe(prints.length);
  });
});
