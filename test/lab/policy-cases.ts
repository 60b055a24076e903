// The policy cases of the upstream NetworkPolicy e2e model (namespaces x, y, z with pods a,
// b, c each, labelled pod=NAME, serving serve-80-tcp and serve-81-udp): the lab runs them with
// real traffic against `lab check` (policy-model.e2e.test.ts), and the agreement test
// (test/agent/policy-agreement.test.ts) holds the compiled rules to the evaluator on each.
import type { LabStatus } from "../../src/lab/status.ts";

export type PodRow = LabStatus["pods"][number];
const ipOf = (pods: PodRow[], ns: string, pod: string) => pods.find((p) => p.k8sNamespace === ns && p.labels.pod === pod)!.ips[0]!;

export const NSS = ["x", "y", "z"];
export const PODS = ["a", "b", "c"];
export const np = (name: string, ns: string, spec: object) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
export const cnp = (name: string, tier: string, priority: number, spec: object) =>
  ({ apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec: { tier, priority, ...spec } });
const podSel = (pod: string) => ({ matchLabels: { pod } });
const nsSel = (ns: string) => ({ matchLabels: { "kubernetes.io/metadata.name": ns } });

export interface Case {
  name: string;
  /** The policies, or a function of the lab's pods (for ipBlock: their addresses). */
  objects: object[] | ((pods: PodRow[]) => object[]);
  /** Runs after the apply (label changes). */
  /** Label changes after the apply ("ns/pod", "key=value" or "key-"), in order. */
  labels?: [string, string][];
}

export const CASES: Case[] = [
  { name: "default deny ingress", objects: [np("deny", "x", { podSelector: {}, policyTypes: ["Ingress"] })] },
  { name: "default deny egress", objects: [np("deny", "y", { podSelector: {}, policyTypes: ["Egress"] })] },
  { name: "podSelector AND namespaceSelector", objects: [np("and", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("y"), podSelector: podSel("b") }] }] })] },
  { name: "podSelector OR namespaceSelector", objects: [np("or", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("y") }, { podSelector: podSel("b") }] }] })] },
  { name: "matchExpressions", objects: [np("expr", "x", { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a", "b"] }] }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["y"] }] } }] }] })] },
  { name: "ipBlock with except", objects: (pods) => [np("ipblock", "x", { podSelector: podSel("a"), policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.244.0.0/16", except: [`${ipOf(pods, "y", "b")}/32`, `${ipOf(pods, "z", "c")}/32`] } }] }] })] },
  { name: "numeric port and endPort", objects: [np("ports", "x", { podSelector: {}, ingress: [{ ports: [{ port: 80, protocol: "TCP" }, { port: 79, endPort: 81, protocol: "UDP" }] }] })] },
  { name: "named port", objects: [np("named", "z", { podSelector: {}, ingress: [{ ports: [{ port: "serve-81-udp", protocol: "UDP" }] }] })] },
  { name: "multiple policies", objects: [np("m1", "y", { podSelector: podSel("c"), ingress: [{ from: [{ podSelector: podSel("a") }] }] }), np("m2", "y", { podSelector: podSel("c"), ingress: [{ from: [{ namespaceSelector: nsSel("z") }] }] })] },
  { name: "update: a label change moves a pod out of the allowed set", objects: [np("upd", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { role: "client" } } }] }] })], labels: [["y/yb", "role=client"], ["y/yb", "role-"], ["z/zc", "role=client"]] },
  { name: "CNP Admin Deny over a NetworkPolicy allow", objects: [np("allow-all", "x", { podSelector: {}, ingress: [{}] }), cnp("deny-y", "Admin", 10, { subject: { namespaces: nsSel("x") }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: nsSel("y") }] }] })] },
  { name: "CNP priorities and Pass", objects: [
    cnp("pass-z", "Admin", 1, { subject: { namespaces: nsSel("x") }, ingress: [{ action: "Pass", from: [{ namespaces: nsSel("z") }] }] }),
    cnp("deny-rest", "Admin", 20, { subject: { namespaces: nsSel("x") }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
    np("z-only-a", "x", { podSelector: podSel("a"), ingress: [{ from: [{ namespaceSelector: nsSel("z"), podSelector: podSel("a") }] }] }),
  ] },
  { name: "CNP Baseline default deny overridden by a NetworkPolicy", objects: [
    cnp("baseline-deny", "Baseline", 1, { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
    np("allow-from-x", "z", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: nsSel("x") }] }] }),
  ] },
];

