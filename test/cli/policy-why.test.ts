// The words of explain's "why" (src/cli/text/policy-why.ts) for the evaluator's typed reasons:
// the deciding thing first (never a rule named default-deny), then each rule's miss.
import { describe, expect, test } from "bun:test";
import { buildClusterState } from "../../src/cluster/build-state.ts";
import { PolicyEvaluator } from "../../src/cluster/evaluate-policy.ts";
import type { KubeObject } from "../../src/cluster/types.ts";
import { directionWhyLines } from "../../src/cli/text/policy-why.ts";

const pod = (ns: string, name: string, labels: Record<string, string>, ip: string) => ({
  kind: "Pod", metadata: { name, namespace: ns, labels }, spec: { nodeName: "n1", containers: [{}] }, status: { podIP: ip },
});
const web = {
  apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "web", namespace: "x" },
  spec: {
    podSelector: { matchLabels: { role: "web" } },
    ingress: [
      { from: [{ podSelector: { matchLabels: { role: "web" } } }] },
      { from: [{ namespaceSelector: { matchLabels: { team: "a" } } }] },
      { from: [{ podSelector: { matchLabels: { role: "db" } } }], ports: [{ port: 8080 }] },
    ],
  },
};
const ev = new PolicyEvaluator(buildClusterState([
  { kind: "Namespace", metadata: { name: "x" } }, pod("x", "db", { role: "db" }, "10.1.0.2"), pod("x", "w", { role: "web" }, "10.1.0.3"), web,
] as KubeObject[]));

describe("explain's why, in words", () => {
  test("isolated: no rule allows it, each rule's miss on its own line", () => {
    const v = ev.explain({ src: { pod: "x/db" }, dst: { pod: "x/w" }, port: 80, protocol: "TCP" });
    const lines = directionWhyLines("ingress", v.ingress);
    expect(lines).toEqual([
      "ingress: DENIED: no rule allows it. NetworkPolicy x/web selects x/w for ingress (isolating it); none of its 3 ingress rules matched",
      "  NetworkPolicy x/web:",
      "    ingress[0].from[0]: podSelector role=web does not select the source x/db (it has role=db; labels {role=db})",
      "    ingress[1].from[0]: namespaceSelector team=a does not select the source's namespace x (it has no team; labels {kubernetes.io/metadata.name=x})",
      "    ingress[2].ports: its peers match, its ports do not: the flow is TCP/80, the rule allows TCP/8080",
    ]);
    expect(lines.join("\n")).not.toContain("default-deny");
    expect(directionWhyLines("egress", v.egress)).toEqual(["egress: allowed: no policy selects x/db for egress"]);
  });

  test("allowed by a rule: the rule, after the ones that did not match", () => {
    const v = ev.explain({ src: { pod: "x/db" }, dst: { pod: "x/w" }, port: 8080, protocol: "TCP" });
    expect(directionWhyLines("ingress", v.ingress)).toEqual([
      "ingress: allowed by NetworkPolicy x/web rule ingress[2]",
      "  NetworkPolicy x/web:",
      "    ingress[0].from[0]: podSelector role=web does not select the source x/db (it has role=db; labels {role=db})",
      "    ingress[1].from[0]: namespaceSelector team=a does not select the source's namespace x (it has no team; labels {kubernetes.io/metadata.name=x})",
      "    ingress[2]: matches",
    ]);
  });

  test("an address outside every pod: pod peers do not select it; nothing judges its own direction", () => {
    const v = ev.explain({ src: { ip: "203.0.113.10" }, dst: { pod: "x/w" }, port: 80, protocol: "TCP" });
    expect(directionWhyLines("ingress", v.ingress)[2]).toBe("    ingress[0].from[0]: selects pods; the source 203.0.113.10 is no pod");
    expect(directionWhyLines("egress", v.egress)).toEqual(["egress: not judged (the source is no pod, or a host-network pod)"]);
  });
});
