// The lab API server's patch types and selectors, on plain objects: the strategic merge
// subset kubectl and mncni rely on, JSON patch through fast-json-patch, and selector syntax.
import { expect, test } from "bun:test";
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from "../../../src/lab/apiserver/patch.ts";
import { fieldSelector, labelSelector, SelectorError } from "../../../src/lab/apiserver/selectors.ts";

const node = {
  metadata: { name: "n1", finalizers: ["a"] },
  spec: { podCIDRs: ["10.244.1.0/24"] },
  status: { conditions: [{ type: "Ready", status: "True" }, { type: "MncniPodMTU", status: "True", message: "1450" }], addresses: [{ type: "InternalIP", address: "10.0.0.1" }] },
};

test("strategic merge: lists with a merge key merge by it, $patch delete removes, other lists are replaced", () => {
  const out = strategicMergePatch("Node", node, {
    metadata: { finalizers: ["b"], labels: { x: "y" } },
    status: { conditions: [{ type: "MncniPodMTU", message: "1400" }, { type: "NetworkUnavailable", status: "False" }], addresses: [{ type: "InternalIP", $patch: "delete" }] },
  });
  expect(out.metadata).toEqual({ name: "n1", finalizers: ["a", "b"], labels: { x: "y" } });
  expect(out.status.conditions).toEqual([{ type: "Ready", status: "True" }, { type: "MncniPodMTU", status: "True", message: "1400" }, { type: "NetworkUnavailable", status: "False" }]);
  expect(out.status.addresses).toEqual([]);
  // A NetworkPolicy's lists have no merge key: replaced, as kube-apiserver does.
  const np = { spec: { ingress: [{ ports: [{ port: 80 }] }, { ports: [{ port: 81 }] }] } };
  expect(strategicMergePatch("NetworkPolicy", np, { spec: { ingress: [{ ports: [{ port: "http" }] }] } }).spec.ingress).toEqual([{ ports: [{ port: "http" }] }]);
  // kubectl label's removal, and $deleteFromPrimitiveList.
  expect(strategicMergePatch("Pod", { metadata: { labels: { a: "1", b: "2" }, finalizers: ["x", "y"] } }, { metadata: { labels: { a: null }, "$deleteFromPrimitiveList/finalizers": ["x"] } }).metadata).toEqual({ labels: { b: "2" }, finalizers: ["y"] });
  expect(() => strategicMergePatch("Node", node, { status: { conditions: [{ status: "False" }] } })).toThrow(PatchError);
});

test("merge patch and JSON patch", () => {
  expect(mergePatch(node, { spec: { podCIDRs: null }, metadata: { labels: { a: "b" } } })).toEqual({ ...node, spec: {}, metadata: { ...node.metadata, labels: { a: "b" } } });
  expect(jsonPatch(node, [{ op: "test", path: "/metadata/name", value: "n1" }, { op: "add", path: "/spec/podCIDRs/-", value: "fd00::/64" }]).spec.podCIDRs).toEqual(["10.244.1.0/24", "fd00::/64"]);
  expect(() => jsonPatch(node, [{ op: "test", path: "/metadata/name", value: "n2" }])).toThrow(PatchError);
  expect(() => jsonPatch(node, [{ op: "remove", path: "/spec/nothing" }])).toThrow(PatchError);
  expect(node.spec.podCIDRs).toEqual(["10.244.1.0/24"]);
});

test("label and field selectors", () => {
  const pod = (labels: Record<string, string>, nodeName: string) => ({ metadata: { name: "p", labels }, spec: { nodeName }, status: { phase: "Running" } });
  const m = labelSelector("app in (web, api),tier!=db,!canary,env");
  expect(m(pod({ app: "web", env: "x" }, "n1"))).toBe(true);
  expect(m(pod({ app: "web", env: "x", tier: "db" }, "n1"))).toBe(false);
  expect(m(pod({ app: "web", env: "x", canary: "" }, "n1"))).toBe(false);
  expect(m(pod({ app: "db", env: "x" }, "n1"))).toBe(false);
  expect(m(pod({ app: "api" }, "n1"))).toBe(false);
  expect(labelSelector("app notin (web)")(pod({}, "n1"))).toBe(true);
  expect(labelSelector("")(pod({}, "n1"))).toBe(true);
  const f = fieldSelector("spec.nodeName=n1,status.phase!=Failed");
  expect(f(pod({}, "n1"))).toBe(true);
  expect(f(pod({}, "n2"))).toBe(false);
  expect(() => labelSelector("a b c")).toThrow(SelectorError);
  expect(() => fieldSelector("spec.nodeName")).toThrow(SelectorError);
});
