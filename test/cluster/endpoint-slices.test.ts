// What the endpoint-slice controller writes for a Service with many endpoints (pure: src/cluster/endpoint-slices.ts):
// slices of at most 100 endpoints (or the cap given), every endpoint in exactly one, packed
// from the current slices so that a change rewrites as few slices as kube's reconciler would.
import { describe, expect, test } from "bun:test";
import { desiredSlices, sliceContent, type EndpointPod } from "../../src/cluster/endpoint-slices.ts";
import type { KubeEndpointSlice, KubeService } from "../../src/cluster/types.ts";

const svc: KubeService = { kind: "Service", metadata: { name: "web", namespace: "apps" }, spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] } } as KubeService;
const pad = (i: number) => String(i).padStart(4, "0");
const pod = (i: number, o: Partial<EndpointPod> = {}): EndpointPod => ({
  namespace: "apps", name: `web-${pad(i)}`, labels: { app: "web" }, ips: [`10.244.${i >> 8}.${i & 255}`], node: "n1", ready: true, terminating: false, ...o,
});
const pods = (n: number, from = 0) => Array.from({ length: n }, (_, i) => pod(from + i));

/** name -> its endpoints' pod names. */
const layout = (slices: KubeEndpointSlice[]) => Object.fromEntries(slices.map((s) => [s.metadata.name, (s.endpoints ?? []).map((e) => e.targetRef!.name!)]));
/** Every endpoint address across slices (duplicates kept). */
const addresses = (slices: KubeEndpointSlice[]) => slices.flatMap((s) => (s.endpoints ?? []).map((e) => e.addresses[0]!));
/** The slices that differ from `before` (new, changed), and those of `before` no longer there. */
function writes(before: KubeEndpointSlice[], after: KubeEndpointSlice[]) {
  const was = new Map(before.map((s) => [s.metadata.name, sliceContent(s)]));
  return {
    written: after.filter((s) => was.get(s.metadata.name) !== sliceContent(s)).map((s) => s.metadata.name),
    deleted: before.filter((s) => !after.some((a) => a.metadata.name === s.metadata.name)).map((s) => s.metadata.name),
  };
}

describe("EndpointSlices of at most 100 endpoints", () => {
  test("250 endpoints: three slices of 100, 100 and 50, each endpoint in exactly one, labelled for the Service and the controller", () => {
    const all = pods(250);
    const slices = desiredSlices(svc, all);
    expect(slices.map((s) => [s.metadata.name, s.endpoints!.length])).toEqual([["web-ipv4", 100], ["web-ipv4-1", 100], ["web-ipv4-2", 50]]);
    expect(addresses(slices).sort()).toEqual(all.map((p) => p.ips[0]!).sort());
    for (const s of slices) {
      expect(s.metadata.labels).toEqual({ "kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io" });
      expect(s.ports).toEqual([{ name: "http", protocol: "TCP", port: 8080 }]);
    }
  });

  test("settled slices are a fixed point: packed again from themselves, nothing is written", () => {
    const all = pods(250);
    const first = desiredSlices(svc, all);
    expect(writes(first, desiredSlices(svc, all, first))).toEqual({ written: [], deleted: [] });
  });

  test("a pod added goes into the slice with room (one write), even when its name sorts first", () => {
    const before = desiredSlices(svc, pods(250));
    const after = desiredSlices(svc, [...pods(250), pod(9000, { name: "a-first", ips: ["10.245.0.1"] })], before);
    expect(writes(before, after)).toEqual({ written: ["web-ipv4-2"], deleted: [] });
    expect(layout(after)["web-ipv4-2"]).toContain("a-first");
  });

  test("a pod removed leaves its slice only; a pod's change rewrites its slice only; nothing moves between slices", () => {
    const before = desiredSlices(svc, pods(250));
    const gone = pods(250).filter((p) => p.name !== "web-0005");
    const after = desiredSlices(svc, gone, before);
    expect(writes(before, after)).toEqual({ written: ["web-ipv4"], deleted: [] });
    expect(layout(after)["web-ipv4-1"]).toEqual(layout(before)["web-ipv4-1"]);
    const notReady = gone.map((p) => (p.name === "web-0150" ? { ...p, ready: false } : p));
    const again = desiredSlices(svc, notReady, after);
    expect(writes(after, again)).toEqual({ written: ["web-ipv4-1"], deleted: [] });
    expect(again.find((s) => s.metadata.name === "web-ipv4-1")!.endpoints!.find((e) => e.targetRef!.name === "web-0150")!.conditions).toEqual({ ready: false, serving: false, terminating: false });
  });

  test("a slice left empty is deleted; new endpoints fill the slices being written first, then new slices named after the ones in use", () => {
    const before = desiredSlices(svc, pods(250));
    // The first 100 go (web-ipv4 empties), 30 of the second slice go, 150 come.
    const now = [...pods(150, 100).filter((p) => Number(p.name.slice(4)) >= 130), ...pods(150, 1000)];
    const after = desiredSlices(svc, now, before);
    expect(addresses(after).sort()).toEqual(now.map((p) => p.ips[0]!).sort());
    const w = writes(before, after);
    expect(w.deleted).toEqual(["web-ipv4"]);
    // web-ipv4-1 (being written anyway: 70 left) is filled to 100 before a new slice is made.
    expect(after.find((s) => s.metadata.name === "web-ipv4-1")!.endpoints!.length).toBe(100);
    for (const s of after) expect(s.endpoints!.length).toBeLessThanOrEqual(100);
    // The old names are not reused in the same pass (a create would meet the slice being deleted).
    expect(after.map((s) => s.metadata.name)).not.toContain("web-ipv4");
  });

  test("over 200 random changes (pods come, go, turn unready; a seeded sequence): always at most the cap, every endpoint once, and a fixed point", () => {
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    let live = new Map(pods(180).map((p) => [p.name, p]));
    let slices = desiredSlices(svc, [...live.values()], [], 50);
    let next = 10_000;
    for (let step = 0; step < 200; step++) {
      const names = [...live.keys()];
      for (let k = rand(30); k > 0; k--) {
        const r = rand(3);
        if (r === 0) live.delete(names[rand(names.length)]!);
        else if (r === 1) live.set(`web-${next}`, pod(next++));
        else {
          const p = live.get(names[rand(names.length)]!);
          if (p) live.set(p.name, { ...p, ready: !p.ready });
        }
      }
      const now = [...live.values()];
      slices = desiredSlices(svc, now, slices, 50);
      for (const sl of slices) expect(sl.endpoints!.length).toBeGreaterThan(0);
      for (const sl of slices) expect(sl.endpoints!.length).toBeLessThanOrEqual(50);
      expect(addresses(slices).sort()).toEqual(now.map((p) => p.ips[0]!).sort());
      expect(writes(slices, desiredSlices(svc, now, slices, 50))).toEqual({ written: [], deleted: [] });
    }
    live = new Map();
    expect(desiredSlices(svc, [], slices, 50)).toEqual([]);
  });

  test("a lower cap splits existing slices; each holds at most the cap, every endpoint once", () => {
    const before = desiredSlices(svc, pods(250));
    const after = desiredSlices(svc, pods(250), before, 40);
    for (const s of after) expect(s.endpoints!.length).toBeLessThanOrEqual(40);
    expect(addresses(after).sort()).toEqual(pods(250).map((p) => p.ips[0]!).sort());
    expect(after.length).toBe(7);
  });

  test("dual-stack and per-pod named ports: groups never share a slice; each group is split on its own", () => {
    const named: KubeService = { ...svc, spec: { ...svc.spec, ports: [{ name: "http", port: 80, targetPort: "web", protocol: "TCP" }] } } as KubeService;
    const all = Array.from({ length: 130 }, (_, i) => pod(i, { ips: [`10.244.0.${i}`, `fd00::${i.toString(16)}`], ports: [{ name: "web", containerPort: i < 120 ? 8080 : 9090, protocol: "TCP" }] }));
    const slices = desiredSlices(named, all);
    expect(slices.map((s) => [s.metadata.name, s.addressType, s.ports![0]!.port, s.endpoints!.length])).toEqual([
      ["web-ipv4", "IPv4", 8080, 100], ["web-ipv4-1", "IPv4", 8080, 20], ["web-ipv4-2", "IPv4", 9090, 10],
      ["web-ipv6", "IPv6", 8080, 100], ["web-ipv6-1", "IPv6", 8080, 20], ["web-ipv6-2", "IPv6", 9090, 10],
    ]);
  });

  test("slices of other Services, and slices not managed by the controller, are not taken as current", () => {
    const first = desiredSlices(svc, pods(10));
    const foreign = first.map((s) => ({ ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, "endpointslice.kubernetes.io/managed-by": "someone-else" } } }));
    const other = first.map((s) => ({ ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, "kubernetes.io/service-name": "api" } } }));
    expect(layout(desiredSlices(svc, pods(12), [...foreign, ...other]))).toEqual({ "web-ipv4": pods(12).map((p) => p.name) });
  });

  test("a slice as another API server returns it (its fields and label keys in another order) compares equal: no write", () => {
    const [s] = desiredSlices(svc, pods(3));
    const reordered = {
      ports: s!.ports!.map((p) => ({ port: p.port, protocol: p.protocol, name: p.name })),
      endpoints: s!.endpoints!.map((e) => ({ targetRef: { name: e.targetRef!.name, namespace: e.targetRef!.namespace, kind: e.targetRef!.kind }, nodeName: e.nodeName, conditions: { terminating: e.conditions!.terminating, serving: e.conditions!.serving, ready: e.conditions!.ready }, addresses: e.addresses })),
      addressType: s!.addressType,
      metadata: { ...s!.metadata, resourceVersion: "7", labels: { "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "web" } },
      kind: "EndpointSlice",
    } as KubeEndpointSlice;
    expect(sliceContent(reordered)).toBe(sliceContent(s!));
    expect(writes([reordered], desiredSlices(svc, pods(3), [reordered]))).toEqual({ written: [], deleted: [] });
  });
});
