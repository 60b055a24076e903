// The compiled rules and the evaluator (`lab check`'s oracle) agree on every flow of every
// fixture: each policy case of the upstream model the lab runs (test/lab/policy-cases.ts) and
// the attacks of issue #24, on nine dual-stack pods over two nodes. Agreement is the verdict
// and, for a denied flow, the policy and rule named (the verdict log's against the
// evaluator's). The tables are read by test/agent/nft-model.ts; the traffic tests
// (policy.integration, policy-attack.integration) show the kernel doing what they say.
import { describe, expect, test } from "bun:test";
import { buildClusterState } from "../../src/cluster/build-state.ts";
import type { KubeObject } from "../../src/cluster/types.ts";
import { CASES, cnp, np, NSS, PODS, type PodRow } from "../lab/policy-cases.ts";
import { disagreements } from "./nft-model.ts";

interface PodSpec {
  ns: string;
  name: string;
  node: string;
  ips: string[];
  labels: Record<string, string>;
  phase?: string;
  created?: string;
}

const podDoc = (p: PodSpec): KubeObject => ({
  kind: "Pod",
  metadata: { name: p.name, namespace: p.ns, labels: p.labels, ...(p.created ? { creationTimestamp: p.created } : {}) },
  spec: { nodeName: p.node, containers: [{ ports: [{ name: "serve-80-tcp", containerPort: 80, protocol: "TCP" }, { name: "serve-81-udp", containerPort: 81, protocol: "UDP" }] }] },
  status: { phase: p.phase ?? "Running", podIPs: p.ips.map((ip) => ({ ip })) },
} as KubeObject);

/** The lab's model: x, y, z with pods a, b, c (named xa, ...), alternating over two nodes, dual-stack. */
function modelPods(): PodSpec[] {
  let i = 0;
  return NSS.flatMap((ns) => PODS.map((pod) => {
    const node = (i % 2) + 1;
    const k = 2 + i++;
    return { ns, name: `${ns}${pod}`, node: `node${node}`, ips: [`10.244.${node}.${k}`, `fd00:244:0:${node}::${k}`], labels: { pod } };
  }));
}
const namespaces = NSS.map((name) => ({ kind: "Namespace", metadata: { name, labels: { team: name } } }) as KubeObject);
const rows = (pods: PodSpec[]): PodRow[] => pods.map((p) => ({ k8sNamespace: p.ns, labels: p.labels, ips: p.ips }) as unknown as PodRow);

function applyLabels(pods: PodSpec[], changes: [string, string][]): void {
  for (const [key, change] of changes) {
    const p = pods.find((x) => `${x.ns}/${x.name}` === key)!;
    if (change.endsWith("-")) delete p.labels[change.slice(0, -1)];
    else {
      const [k, v] = change.split("=") as [string, string];
      p.labels[k] = v;
    }
  }
}

const EXTERNAL = ["203.0.113.10", "2001:db8::10"];

describe("compiled rules and evaluator agree", () => {
  for (const c of CASES) {
    test(`upstream model: ${c.name}`, () => {
      const pods = modelPods();
      const objects = typeof c.objects === "function" ? c.objects(rows(pods)) : c.objects;
      applyLabels(pods, c.labels ?? []);
      const state = buildClusterState([...namespaces, ...pods.map(podDoc), ...(objects as KubeObject[])]);
      expect(state.invalid).toEqual([]);
      expect(disagreements(state, { external: EXTERNAL })).toEqual([]);
    });
  }

  const attacks: { name: string; objects: object[]; pods?: (p: PodSpec[]) => PodSpec[] }[] = [
    { name: "#24.1 a finished pod keeps another pod's address", objects: [np("from-a", "x", { podSelector: { matchLabels: { pod: "b" } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } }] }] })],
      pods: (p) => [...p, { ...p[4]!, name: "finished", labels: { pod: "a" }, phase: "Succeeded", ips: p[8]!.ips }] },
    { name: "#24.5 two live pods show one address, both namespaces with policies", objects: [np("deny", "x", { podSelector: {} }), np("deny", "y", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ podSelector: {} }] }] })],
      pods: (p) => [...p.map((x) => ({ ...x, created: "2026-12-07T03:00:00Z" })), { ...p[3]!, ns: "x", name: "ghost", phase: "Pending", created: "2026-12-07T01:00:00Z" }, { ...p[5]!, ns: "x", name: "newer", phase: "Running", created: "2026-12-07T04:00:00Z" }] },
    { name: "#24.4 Admin Pass with a nodes peer is a Deny of everything", objects: [
      cnp("pass-nodes", "Admin", 1, { subject: { namespaces: { matchLabels: { team: "x" } } }, egress: [{ name: "to-nodes", action: "Pass", to: [{ nodes: {} }], protocols: [{ tcp: { destinationPort: { number: 80 } } }] }] }),
      cnp("deny-y", "Admin", 2, { subject: { namespaces: {} }, egress: [{ action: "Deny", to: [{ namespaces: { matchLabels: { team: "y" } } }] }] }),
      cnp("accept-nodes", "Admin", 3, { subject: { namespaces: { matchLabels: { team: "z" } } }, egress: [{ action: "Accept", to: [{ nodes: {} }, { networks: ["203.0.113.0/24"] }] }, { action: "Deny", to: [{ networks: ["0.0.0.0/0", "::/0"] }] }] }),
    ] },
    { name: "#24.6 a rule name in another script", objects: [cnp("deny-y", "Admin", 5, { subject: { namespaces: {} }, ingress: [{ name: "ü".repeat(100), action: "Deny", from: [{ namespaces: { matchLabels: { team: "y" } } }] }] })] },
    { name: "Baseline Pass, Admin Pass falling to Baseline Deny, priority ties by name", objects: [
      cnp("a-pass", "Admin", 4, { subject: { namespaces: {} }, ingress: [{ action: "Pass", from: [{ namespaces: { matchLabels: { team: "z" } } }] }] }),
      cnp("b-deny", "Admin", 4, { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: { matchLabels: { team: "z" } } }] }] }),
      cnp("base-pass", "Baseline", 1, { subject: { namespaces: {} }, ingress: [{ action: "Pass", from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } } }] }] }),
      cnp("base-deny", "Baseline", 2, { subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] }),
    ] },
    { name: "egress networks, ipBlock except, port ranges, named ports, both families", objects: [
      cnp("egress", "Admin", 1, { subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "c" } } } }, egress: [
        { action: "Accept", to: [{ networks: ["203.0.113.0/24", "2001:db8::/64"] }], protocols: [{ tcp: { destinationPort: { range: { start: 80, end: 80 } } } }, { udp: {} }] },
        { action: "Deny", to: [{ networks: ["0.0.0.0/0", "::/0"] }], protocols: [{ destinationNamedPort: "serve-81-udp" }, { tcp: { destinationPort: { number: 81 } } }] },
      ] }),
      np("mixed", "y", { podSelector: {}, policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ ipBlock: { cidr: "10.244.0.0/16", except: ["10.244.2.0/24"] } }, { ipBlock: { cidr: "fd00:244::/48" } }], ports: [{ port: 79, endPort: 81, protocol: "TCP" }, { port: "serve-81-udp", protocol: "UDP" }] }],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { team: "x" } } }] }, { ports: [{ port: "serve-80-tcp" }] }] }),
    ] },
  ];
  for (const a of attacks) {
    test(a.name, () => {
      const pods = a.pods ? a.pods(modelPods()) : modelPods();
      const state = buildClusterState([...namespaces, ...pods.map(podDoc), ...(a.objects as KubeObject[])]);
      expect(state.invalid).toEqual([]);
      expect(disagreements(state, { external: EXTERNAL })).toEqual([]);
    });
  }
});
