// The evaluator against the upstream NetworkPolicy e2e model (namespaces x, y, z; pods a, b, c
// in each) and the ClusterNetworkPolicy tiers. Each case states its expectation as a rule over
// (source, destination), independent of the evaluator's code; and on each fixture the compiled
// rules agree with the evaluator.
import { describe, expect, test } from "bun:test";
import { PolicyEvaluator, type Flow } from "../../src/cluster/evaluate-policy.ts";
import { buildClusterState } from "../../src/cluster/build-state.ts";
import type { KubeObject, Protocol } from "../../src/cluster/types.ts";
import { disagreements } from "../agent/nft-model.ts";

const NSS = ["x", "y", "z"];
const PODS = ["a", "b", "c"];
const ip = (ns: string, pod: string) => `10.9.${NSS.indexOf(ns) + 1}.${PODS.indexOf(pod) + 10}`;

function model(policies: object[], nsLabels: Record<string, Record<string, string>> = {}): PolicyEvaluator {
  const objs: object[] = [];
  for (const ns of NSS) {
    objs.push({ kind: "Namespace", metadata: { name: ns, labels: { "kubernetes.io/metadata.name": ns, ns, ...nsLabels[ns] } } });
    for (const pod of PODS) {
      objs.push({
        kind: "Pod",
        metadata: { name: pod, namespace: ns, labels: { pod } },
        spec: { nodeName: "n1", containers: [{ ports: [{ name: "serve-80-tcp", containerPort: 80 }, { name: "serve-81-udp", containerPort: 81, protocol: "UDP" }] }] },
        status: { podIP: ip(ns, pod) },
      });
    }
  }
  const state = buildClusterState([...objs, ...policies] as KubeObject[]);
  // Every fixture here also holds the compiled rules to the evaluator (test/agent/nft-model.ts).
  expect(disagreements(state, { ports: [80, 81, 82] })).toEqual([]);
  return new PolicyEvaluator(state);
}

type Peer = { ns: string; pod: string };
/** Every ordered pair of distinct pods, checked against `want` for one port/protocol. */
function table(ev: PolicyEvaluator, port: number, protocol: Protocol, want: (s: Peer, d: Peer) => boolean): string[] {
  const wrong: string[] = [];
  for (const sn of NSS) for (const sp of PODS) for (const dn of NSS) for (const dp of PODS) {
    if (sn === dn && sp === dp) continue;
    const flow: Flow = { src: { pod: `${sn}/${sp}` }, dst: { pod: `${dn}/${dp}` }, port, protocol };
    const got = ev.evaluate(flow).allowed;
    const exp = want({ ns: sn, pod: sp }, { ns: dn, pod: dp });
    if (got !== exp) wrong.push(`${sn}/${sp} -> ${dn}/${dp} ${port}/${protocol}: expected ${exp ? "allowed" : "denied"}, evaluated ${got ? "allowed" : "denied"}`);
  }
  return wrong;
}

const np = (name: string, ns: string, spec: object) => ({ apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name, namespace: ns }, spec });
const cnp = (name: string, tier: string, priority: number, spec: object) =>
  ({ apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name }, spec: { tier, priority, ...spec } });
const xa = (p: Peer) => p.ns === "x" && p.pod === "a";

describe("NetworkPolicy (upstream e2e model)", () => {
  test("no policy: everything allowed", () => {
    expect(table(model([]), 80, "TCP", () => true)).toEqual([]);
  });
  test("default deny ingress in x", () => {
    const ev = model([np("deny", "x", { podSelector: {}, policyTypes: ["Ingress"] })]);
    for (const proto of ["TCP", "UDP", "SCTP"] as Protocol[]) expect(table(ev, 81, proto, (_s, d) => d.ns !== "x")).toEqual([]);
  });
  test("default deny egress in x", () => {
    const ev = model([np("deny", "x", { podSelector: {}, policyTypes: ["Egress"] })]);
    expect(table(ev, 80, "UDP", (s) => s.ns !== "x")).toEqual([]);
  });
  test("allow ingress to x/a from pods b in the same namespace", () => {
    const ev = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })]);
    expect(table(ev, 80, "TCP", (s, d) => !xa(d) || (s.ns === "x" && s.pod === "b"))).toEqual([]);
  });
  test("namespaceSelector AND podSelector vs OR (two peers)", () => {
    const and = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "c" } } }] }] })]);
    expect(table(and, 80, "TCP", (s, d) => !xa(d) || (s.ns === "y" && s.pod === "c"))).toEqual([]);
    const or = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }, { podSelector: { matchLabels: { pod: "c" } } }] }] })]);
    expect(table(or, 80, "TCP", (s, d) => !xa(d) || s.ns === "y" || (s.ns === "x" && s.pod === "c"))).toEqual([]);
  });
  test("matchExpressions: namespaces NotIn (x), pods In (b, c)", () => {
    const ev = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "ns", operator: "NotIn", values: ["x"] }] }, podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] } }] }] })]);
    expect(table(ev, 80, "TCP", (s, d) => !xa(d) || (s.ns !== "x" && s.pod !== "a"))).toEqual([]);
  });
  test("ipBlock with except (egress from x/a)", () => {
    const ev = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "10.9.0.0/16", except: [`${ip("y", "b")}/32`] } }] }] })]);
    expect(table(ev, 80, "TCP", (s, d) => !xa(s) || !(d.ns === "y" && d.pod === "b"))).toEqual([]);
  });
  test("numeric port, named port, endPort", () => {
    const only80 = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: 80 }] }] })]);
    expect(table(only80, 80, "TCP", () => true)).toEqual([]);
    expect(table(only80, 81, "TCP", (_s, d) => !xa(d))).toEqual([]);
    expect(table(only80, 80, "UDP", (_s, d) => !xa(d))).toEqual([]);
    const named = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: "serve-81-udp", protocol: "UDP" }] }] })]);
    expect(table(named, 81, "UDP", () => true)).toEqual([]);
    expect(table(named, 80, "UDP", (_s, d) => !xa(d))).toEqual([]);
    const range = model([np("p", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: 79, endPort: 80, protocol: "SCTP" }] }] })]);
    expect(table(range, 80, "SCTP", () => true)).toEqual([]);
    expect(table(range, 81, "SCTP", (_s, d) => !xa(d))).toEqual([]);
  });
  test("multiple policies: the union of what each allows", () => {
    const ev = model([
      np("p1", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] }),
      np("p2", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "z" } } }] }] }),
    ]);
    expect(table(ev, 80, "TCP", (s, d) => !xa(d) || (s.ns === "x" && s.pod === "b") || s.ns === "z")).toEqual([]);
  });
  test("egress and ingress both required", () => {
    const ev = model([
      np("in", "y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] }),
      np("out", "x", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: "z" } } }] }] }),
    ]);
    expect(table(ev, 80, "TCP", (s, d) => s.ns !== "x" || d.ns === "z")).toEqual([]);
  });
  test("the deciding policy is named", () => {
    const ev = model([np("deny", "x", { podSelector: {}, policyTypes: ["Ingress"] })]);
    const v = ev.evaluate({ src: { pod: "y/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    expect(v).toMatchObject({ allowed: false, deniedIn: "ingress", by: { kind: "NetworkPolicy", namespace: "x", name: "deny", rule: "default-deny", direction: "ingress" } });
  });
});

describe("ClusterNetworkPolicy tiers", () => {
  const denyXFromY = cnp("deny-y-to-x", "Admin", 10, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [{ name: "no-y", action: "Deny", from: [{ namespaces: { matchLabels: { ns: "y" } } }] }] });
  test("Admin Deny over a NetworkPolicy allow", () => {
    const ev = model([denyXFromY, np("allow-all", "x", { podSelector: {}, ingress: [{}] })]);
    expect(table(ev, 80, "TCP", (s, d) => !(d.ns === "x" && s.ns === "y"))).toEqual([]);
    expect(ev.evaluate({ src: { pod: "y/a" }, dst: { pod: "x/a" }, port: 80, protocol: "TCP" }).by).toEqual({ kind: "ClusterNetworkPolicy", name: "deny-y-to-x", rule: "no-y", tier: "Admin", action: "Deny", direction: "ingress" });
  });
  test("priorities: a lower number first (Accept at 5 beats Deny at 10)", () => {
    const accept = cnp("accept-y-b", "Admin", 5, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [{ action: "Accept", from: [{ pods: { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "b" } } } }] }] });
    const ev = model([denyXFromY, accept]);
    expect(table(ev, 80, "TCP", (s, d) => !(d.ns === "x" && s.ns === "y") || s.pod === "b")).toEqual([]);
  });
  test("rules in order: the first match decides", () => {
    const p = cnp("ordered", "Admin", 1, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [
      { action: "Accept", from: [{ pods: { podSelector: { matchLabels: { pod: "c" } } } }] },
      { action: "Deny", from: [{ namespaces: {} }] },
    ] });
    expect(table(model([p]), 80, "TCP", (s, d) => d.ns !== "x" || s.pod === "c")).toEqual([]);
  });
  test("Pass hands the flow to NetworkPolicy (and skips the rest of the Admin tier)", () => {
    const pass = cnp("pass-x", "Admin", 1, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [{ action: "Pass", from: [{ namespaces: { matchLabels: { ns: "z" } } }] }] });
    const denyAll = cnp("deny-all", "Admin", 20, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] });
    const npOnlyA = np("z-to-a", "x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: {} }] }] });
    const ev = model([pass, denyAll, npOnlyA]);
    // z -> x: passed to NetworkPolicy (x/a allows all; x/b, x/c not isolated -> allowed). Others -> x: denied at priority 20.
    expect(table(ev, 80, "TCP", (s, d) => d.ns !== "x" || s.ns === "z")).toEqual([]);
  });
  test("Baseline default deny, overridden by a NetworkPolicy", () => {
    const base = cnp("default-deny", "Baseline", 1, { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] });
    const allowY = np("allow-from-y", "x", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] });
    const ev = model([base, allowY]);
    expect(table(ev, 80, "TCP", (s, d) => d.ns === "x" && s.ns === "y")).toEqual([]);
  });
  test("egress: networks and protocols with port ranges and named ports", () => {
    const p = cnp("egress", "Admin", 1, { subject: { pods: { podSelector: { matchLabels: { pod: "a" } } } }, egress: [
      { action: "Accept", to: [{ networks: [`${ip("z", "c")}/32`] }], protocols: [{ tcp: { destinationPort: { range: { start: 80, end: 81 } } } }] },
      { action: "Accept", to: [{ namespaces: {} }], protocols: [{ destinationNamedPort: "serve-81-udp" }] },
      { action: "Deny", to: [{ namespaces: {} }] },
    ] });
    const ev = model([p]);
    expect(table(ev, 81, "TCP", (s, d) => s.pod !== "a" || (d.ns === "z" && d.pod === "c"))).toEqual([]);
    expect(table(ev, 81, "UDP", () => true)).toEqual([]);
    expect(table(ev, 80, "UDP", (s) => s.pod !== "a")).toEqual([]);
  });
});

// Why: every policy selecting the judged pod, each rule as checked, each peer's miss as typed
// data (what explain prints and a web view renders).
describe("explain: why each rule did or did not match", () => {
  test("a NetworkPolicy isolating the pod: each rule's miss (podSelector, own namespace, namespaceSelector, ports)", () => {
    const web = np("web", "x", { podSelector: { matchLabels: { pod: "b" } }, ingress: [
      { from: [{ podSelector: { matchLabels: { pod: "c" } } }] },
      { from: [{ namespaceSelector: { matchLabels: { team: "a" } } }] },
      { from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a"] }] } }], ports: [{ port: 8080 }, { protocol: "UDP", port: 53 }] },
    ] });
    const v = model([web]).explain({ src: { pod: "y/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    expect(v).toMatchObject({ allowed: false, deniedIn: "ingress", by: { kind: "NetworkPolicy", namespace: "x", name: "web", rule: "default-deny" } });
    expect(v.ingress.why.decided).toBe("isolated");
    expect(v.ingress.why.subject).toBe("x/b");
    const rules = v.ingress.why.policies.map((p) => [p.name, p.rules]);
    expect(rules).toEqual([["web", [
      { rule: "ingress[0]", at: "ingress[0]", matched: false, peers: [{ at: "from[0]", miss: { kind: "namespace", policyNamespace: "x", pod: "y/a", namespace: "y" } }] },
      { rule: "ingress[1]", at: "ingress[1]", matched: false, peers: [{ at: "from[0]", miss: {
        kind: "namespaceSelector", selector: { matchLabels: { team: "a" } }, unmet: [{ requirement: "team=a", key: "team" }], pod: "y/a", namespace: "y", labels: { "kubernetes.io/metadata.name": "y", ns: "y" },
      } }] },
      // Own namespace x is not y either: the third rule's peer misses before its ports are looked at.
      { rule: "ingress[2]", at: "ingress[2]", matched: false, peers: [{ at: "from[0]", miss: { kind: "namespace", policyNamespace: "x", pod: "y/a", namespace: "y" } }] },
    ]]]);
    // From x/a: the podSelector of rule 0 misses (pod=a, not c), rule 2's peer matches but not its ports.
    const w = model([web]).explain({ src: { pod: "x/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    const [r0, , r2] = w.ingress.why.policies[0]!.rules;
    expect(r0!.peers![0]!.miss).toEqual({ kind: "podSelector", selector: { matchLabels: { pod: "c" } }, unmet: [{ requirement: "pod=c", key: "pod", value: "a" }], pod: "x/a", labels: { pod: "a" } });
    expect(r2).toEqual({ rule: "ingress[2]", at: "ingress[2]", matched: false, ports: { protocol: "TCP", port: 80, rule: ["TCP/8080", "UDP/53"] } });
    // The egress side: nothing selects x/a.
    expect(w.egress.why).toEqual({ subject: "x/a", decided: "default", policies: [] });
    // evaluate() gives the same verdict without the why.
    expect(model([web]).evaluate({ src: { pod: "x/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" }).ingress).toEqual({ allowed: false, by: w.ingress.by! });
  });

  test("ClusterNetworkPolicy rules in order, up to the deciding one; an address outside every pod is no pod; ipBlock except", () => {
    const p = cnp("ordered", "Admin", 3, { subject: { namespaces: { matchLabels: { ns: "x" } } }, ingress: [
      { name: "from-z", action: "Accept", from: [{ namespaces: { matchLabels: { ns: "z" } } }] },
      { action: "Deny", from: [{ pods: { podSelector: { matchLabels: { pod: "a" } } } }] },
    ] });
    const v = model([p]).explain({ src: { pod: "y/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    expect(v.ingress.why.decided).toBe("admin");
    expect(v.ingress.why.policies).toEqual([{ kind: "ClusterNetworkPolicy", name: "ordered", tier: "Admin", priority: 3, rules: [
      { rule: "from-z", at: "ingress[0]", action: "Accept", matched: false, peers: [{ at: "from[0]", miss: {
        kind: "namespaceSelector", selector: { matchLabels: { ns: "z" } }, unmet: [{ requirement: "ns=z", key: "ns", value: "y" }], pod: "y/a", namespace: "y", labels: { "kubernetes.io/metadata.name": "y", ns: "y" },
      } }] },
      { rule: "ingress[1]", at: "ingress[1]", action: "Deny", matched: true },
    ] }]);
    const ext = model([p]).explain({ src: { ip: "203.0.113.10" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    expect(ext.egress.why).toEqual({ decided: "not-judged", policies: [] });
    expect(ext.ingress.why.policies[0]!.rules.map((r) => r.peers?.[0]?.miss)).toEqual([{ kind: "notPod", ip: "203.0.113.10" }, { kind: "notPod", ip: "203.0.113.10" }]);
    expect(ext.ingress.why.decided).toBe("default");
    const blk = np("blk", "x", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.9.0.0/16", except: [`${ip("y", "a")}/32`] } }] }] });
    const b = model([blk]).explain({ src: { pod: "y/a" }, dst: { pod: "x/b" }, port: 80, protocol: "TCP" });
    expect(b.ingress.why.policies[0]!.rules[0]!.peers![0]!.miss).toEqual({ kind: "cidr", field: "ipBlock", cidrs: ["10.9.0.0/16"], ip: ip("y", "a"), except: `${ip("y", "a")}/32` });
  });
});
