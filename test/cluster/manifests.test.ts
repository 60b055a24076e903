import { describe, expect, test } from "bun:test";
import { buildClusterState, parseManifests } from "../../src/cluster/index.ts";
import { CIDRIndex, collapseCIDRs } from "../../src/net/cidr.ts";

const node = (name: string, cidrs: string[] | undefined, ips: string[]) => ({
  apiVersion: "v1",
  kind: "Node",
  metadata: { name },
  spec: cidrs ? { podCIDRs: cidrs } : {},
  status: { addresses: [...ips.map((address) => ({ type: "InternalIP", address })), { type: "Hostname", address: name }] },
});

describe("parseManifests", () => {
  test("YAML with several documents, a List and a NodeList whose items omit kind", () => {
    const text = `
apiVersion: v1
kind: Node
metadata: {name: a}
spec: {podCIDRs: [10.244.1.0/24]}
---
# an empty document is fine
---
apiVersion: v1
kind: List
items:
- {kind: Namespace, metadata: {name: prod, labels: {team: x}}}
- {kind: ConfigMap, metadata: {name: ignored}}
---
kind: NodeList
items:
- metadata: {name: b}
`;
    const r = parseManifests(text, "f.yaml");
    expect(r.invalid).toEqual([]);
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(["Node/a", "Namespace/prod", "Node/b"]);
  });

  test("JSON is YAML", () => {
    const r = parseManifests(JSON.stringify(node("j", ["10.244.9.0/24"], ["10.0.0.9"])), "j.json");
    expect(r.objects).toHaveLength(1);
  });

  test("malformed documents are reported with the file, good ones in the same file kept", () => {
    const r = parseManifests("kind: Node\nmetadata: {name: ok}\n---\nkind: Node\nmetadata: {}\n---\n[1, 2\n---\n- just a list\n", "bad.yaml");
    expect(r.objects.map((o) => o.metadata.name)).toEqual(["ok"]);
    expect(r.invalid).toHaveLength(3);
    expect(r.invalid.every((i) => i.file === "bad.yaml")).toBe(true);
    expect(r.invalid[0]!.error).toContain("Node without metadata.name");
  });

  test("a List without items is reported", () => {
    expect(parseManifests("kind: PodList\n", "l.yaml").invalid[0]!.error).toContain("without items");
  });
});

describe("buildClusterState", () => {
  test("nodes: IPv4, IPv6, dual-stack, legacy podCIDR, no pod CIDR, bad values", () => {
    const s = buildClusterState([
      node("v4", ["10.244.1.0/24"], ["10.0.0.1"]),
      node("v6", ["fd00:10:244:2::/64"], ["fd00::2"]),
      node("ds", ["10.244.3.0/24", "fd00:10:244:3:0::/64"], ["10.0.0.3", "fd00:0::3"]),
      node("none", undefined, ["10.0.0.4"]),
      { kind: "Node", metadata: { name: "legacy" }, spec: { podCIDR: "10.244.5.7/24" } } as any,
      node("bad", ["10.244.6.0/33", "10.244.6.0/24"], ["not-an-ip"]),
    ]);
    expect(s.nodes.get("v4")).toEqual({ name: "v4", internalIPs: ["10.0.0.1"], podCIDRs: ["10.244.1.0/24"], problems: [] });
    expect(s.nodes.get("v6")!.podCIDRs).toEqual(["fd00:10:244:2::/64"]);
    expect(s.nodes.get("ds")).toMatchObject({ internalIPs: ["10.0.0.3", "fd00::3"], podCIDRs: ["10.244.3.0/24", "fd00:10:244:3::/64"] });
    expect(s.nodes.get("none")!.podCIDRs).toEqual([]);
    expect(s.nodes.get("legacy")!.podCIDRs).toEqual(["10.244.5.0/24"]);
    const bad = s.nodes.get("bad")!;
    expect(bad.podCIDRs).toEqual(["10.244.6.0/24"]);
    expect(bad.internalIPs).toEqual([]);
    expect(bad.problems).toHaveLength(2);
  });

  test("pods, namespaces, policies, duplicates reported", () => {
    const objs = parseManifests(`
kind: Pod
metadata: {name: p, namespace: prod, labels: {app: web}}
spec: {nodeName: a}
status: {podIPs: [{ip: 10.244.1.5}, {ip: "fd00::5"}]}
---
kind: Pod
metadata: {name: q}
status: {podIP: 10.244.1.6}
---
kind: NetworkPolicy
metadata: {name: deny, namespace: prod}
spec: {podSelector: {}}
---
kind: Namespace
metadata: {name: prod}
---
kind: Namespace
metadata: {name: prod}
`, "x.yaml").objects;
    const s = buildClusterState(objs);
    expect(s.pods.get("prod/p")).toEqual({ namespace: "prod", name: "p", labels: { app: "web" }, nodeName: "a", podIPs: ["10.244.1.5", "fd00::5"], hostNetwork: false, namedPorts: [] });
    expect(s.pods.get("default/q")!.podIPs).toEqual(["10.244.1.6"]);
    expect(s.networkPolicies.has("prod/deny")).toBe(true);
    expect(s.namespaces.size).toBe(1);
    expect(s.invalid.map((i) => i.error)).toEqual(['duplicate Namespace "prod": later copies ignored']);
  });
});

describe("CIDRIndex and collapseCIDRs", () => {
  test("containment and overlap both ways, per family", () => {
    const idx = new CIDRIndex<string>();
    idx.add("10.244.1.0/24", "a");
    idx.add("fd00::/48", "b");
    expect(idx.container("10.244.1.7")).toBe("a");
    expect(idx.container("10.244.2.7")).toBeUndefined();
    expect(idx.overlapping("10.244.0.0/16")).toBe("a"); // a lies inside
    expect(idx.overlapping("10.244.1.128/25")).toBe("a"); // a contains it
    expect(idx.overlapping("10.245.0.0/16")).toBeUndefined();
    expect(idx.overlapping("fd00:0:0:1::/64")).toBe("b");
    expect(idx.overlapping("fd00:0:1::/64")).toBeUndefined();
    idx.add("10.7.1.0/24", "c"); // added after the /16 cut was cached: must be found inside a /16
    expect(idx.overlapping("10.7.0.0/16")).toBe("c");
    expect(["a", "c"]).toContain(idx.overlapping("10.0.0.0/8")!);
  });

  test("collapse drops covered and duplicate CIDRs and sorts IPv4 first", () => {
    expect(collapseCIDRs(["fd00::/48", "10.244.3.0/24", "10.244.0.0/16", "10.244.0.0/16", "fd00:0:0:5::/64", "10.2.0.0/24", "10.10.0.0/24"]))
      .toEqual(["10.2.0.0/24", "10.10.0.0/24", "10.244.0.0/16", "fd00::/48"]);
  });
});
