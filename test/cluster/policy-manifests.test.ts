// NetworkPolicy and ClusterNetworkPolicy through the manifests source: valid ones land in the
// state, invalid ones are reported naming the field and kept out of it; pods' named ports.
import { describe, expect, test } from "bun:test";
import { buildClusterState, parseManifests } from "../../src/cluster/index.ts";

const state = (text: string) => {
  const p = parseManifests(text, "p.yaml");
  return buildClusterState(p.objects, p.invalid);
};

describe("policy manifests", () => {
  test("a full NetworkPolicy and ClusterNetworkPolicy are read; pods' named ports and namespaces' labels kept", () => {
    const s = state(`
kind: Namespace
metadata: {name: x, labels: {team: a}}
---
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec:
  containers:
  - name: c
    ports: [{name: serve-80-tcp, containerPort: 80}, {name: serve-81-udp, containerPort: 81, protocol: UDP}, {containerPort: 82}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {}, namespaceSelector: {matchLabels: {team: a}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: serve-80-tcp}, {port: 1000, endPort: 2000, protocol: UDP}, {protocol: SCTP}]
  egress: [{}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: cnp}
spec:
  tier: Admin
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}
  ingress:
  - {name: pass-x, action: Pass, from: [{namespaces: {matchLabels: {team: a}}}], protocols: [{tcp: {destinationPort: {number: 80}}}, {destinationNamedPort: serve-81-udp}]}
  egress:
  - {action: Deny, to: [{networks: [192.168.0.0/16, "fd00::/8"]}], protocols: [{udp: {destinationPort: {range: {start: 1, end: 100}}}}]}
  - {action: Accept, to: [{nodes: {}}]}
`);
    expect(s.invalid).toEqual([]);
    expect(s.namespaces.get("x")!.labels).toEqual({ team: "a" });
    expect(s.pods.get("x/a")!.namedPorts).toEqual([
      { name: "serve-80-tcp", port: 80, protocol: "TCP" },
      { name: "serve-81-udp", port: 81, protocol: "UDP" },
    ]);
    expect(s.networkPolicies.get("default/np")!.metadata.namespace).toBe("default");
    expect(s.clusterNetworkPolicies.get("cnp")!.spec.ingress![0]!.action).toBe("Pass");
  });

  const invalid: [string, string, RegExp][] = [
    ["NetworkPolicy", "spec: {}", /spec.podSelector undefined: must be a label selector/],
    ["NetworkPolicy", "spec: {podSelector: {}, ingress: [{ports: [{port: 80, endPort: 70}]}]}", /spec.ingress\[0\].ports\[0\].endPort 70: must be greater/],
    ["NetworkPolicy", "spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}", /endPort 90: may not be set with a named port/],
    ["NetworkPolicy", "spec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}", /spec.egress\[0\].to\[0\].ipBlock.except\[0\] "11.0.0.0\/16": must be strictly within/],
    ["NetworkPolicy", "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}", /ipBlock may not be combined/],
    ["NetworkPolicy", "spec: {podSelector: {}, ingress: [{ports: [{protocol: ICMP}]}]}", /spec.ingress\[0\].ports\[0\].protocol "ICMP"/],
    ["ClusterNetworkPolicy", "spec: {tier: Middle, priority: 1, subject: {namespaces: {}}}", /spec.tier "Middle"/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1001, subject: {namespaces: {}}}", /spec.priority 1001/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1, subject: {namespaces: {}, pods: {podSelector: {}}}}", /spec.subject .*exactly one/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}", /spec.ingress\[0\].action "Allow"/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{networks: [10.0.0.0/8]}]}]}", /spec.ingress\[0\].from\[0\].*unknown field networks/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 90, end: 80}}}}]}]}", /spec.egress\[0\].protocols\[0\].tcp.destinationPort.range .*start must be less than end/],
    ["ClusterNetworkPolicy", "spec: {tier: Admin, priority: 1, subject: {namespaces: {}}, egress: [{action: Deny, to: []}]}", /spec.egress\[0\].to .*at least 1/],
  ];
  for (const [kind, spec, re] of invalid) {
    test(`invalid ${kind} reported and skipped: ${re.source}`, () => {
      const s = state(`kind: ${kind}\nmetadata: {name: bad, namespace: ns}\n${spec}\n`);
      expect(s.networkPolicies.size + s.clusterNetworkPolicies.size).toBe(0);
      expect(s.invalid).toHaveLength(1);
      expect(s.invalid[0]!.error).toMatch(new RegExp(`invalid ${kind} "(ns/)?bad"`));
      expect(s.invalid[0]!.error).toMatch(re);
    });
  }
});
