// The Service proxy's elements computed from cluster state (no kernel): named targetPorts
// resolved per endpoint, endpoint conditions as kube-proxy uses them, slots kept stable, only
// the changed Service recompiled. The kernel side is services-engine.test.ts and the suite.
import { describe, expect, test } from "bun:test";
import { buildClusterState } from "../../src/cluster/index.ts";
import { ProxyElements } from "../../src/agent/services/elements.ts";

const svc = (name: string, ip: string, spec: object = {}) => ({ kind: "Service", metadata: { name, namespace: "a" }, spec: { clusterIP: ip, clusterIPs: [ip], ports: [{ name: "http", port: 80, targetPort: "http" }], ...spec } });
type Ep = { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean };
const slice = (name: string, service: string, port: number, eps: Ep[]) => ({
  kind: "EndpointSlice", metadata: { name, namespace: "a", labels: { "kubernetes.io/service-name": service } }, addressType: "IPv4",
  ports: [{ name: "http", port, protocol: "TCP" }],
  endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node ?? "n2", conditions: { ready: e.ready ?? true, serving: e.serving, terminating: e.terminating } })),
});
const BASE = 0x5c000000;
const eps = (p: ProxyElements, key: string) => [...(p.elements.get("endpoints-ip-4")?.keys() ?? [])].filter((e) => e.startsWith(`${key} . `) && Number(e.split(" . ")[3]!.split(" : ")[0]) < BASE + 0x10000).sort();

describe("ProxyElements", () => {
  test("a named targetPort is resolved per endpoint: two slices, two port numbers", () => {
    const p = new ProxyElements("n1");
    p.update(buildClusterState([svc("web", "10.96.0.10"), slice("web-a", "web", 8080, [{ ip: "10.244.1.2" }]), slice("web-b", "web", 9090, [{ ip: "10.244.2.2" }])] as any), []);
    expect(eps(p, "10.96.0.10 . tcp . 80").map((e) => e.split(" : ")[1])).toEqual(["10.244.1.2 . 8080", "10.244.2.2 . 9090"]);
  });

  test("ready endpoints only; none ready: the serving terminating ones; not serving: never", () => {
    const p = new ProxyElements("n1");
    const s = (list: Ep[]) => buildClusterState([svc("web", "10.96.0.10"), slice("web-a", "web", 8080, list)] as any);
    p.update(s([{ ip: "10.244.1.2" }, { ip: "10.244.1.3", ready: false, serving: true, terminating: true }]), []);
    expect(eps(p, "10.96.0.10 . tcp . 80").map((e) => e.split(" : ")[1])).toEqual(["10.244.1.2 . 8080"]);
    p.update(s([{ ip: "10.244.1.3", ready: false, serving: true, terminating: true }, { ip: "10.244.1.4", ready: false, serving: false, terminating: true }]), []);
    expect(eps(p, "10.96.0.10 . tcp . 80").map((e) => e.split(" : ")[1])).toEqual(["10.244.1.3 . 8080"]);
    const u = p.update(s([{ ip: "10.244.1.4", ready: false, serving: false, terminating: true }]), []);
    expect(eps(p, "10.96.0.10 . tcp . 80")).toEqual([]);
    expect([...p.elements.get("no-endpoints-ip-4")!.keys()]).toEqual(["10.96.0.10 . tcp . 80 : goto reject-svc"]);
    expect(u.delta.get("service-ips-4")!.del.size).toBe(1);
  });

  test("slots: a surviving endpoint keeps its slot, a gone one's is filled by the last", () => {
    const p = new ProxyElements("n1");
    const s = (ips: string[]) => buildClusterState([svc("web", "10.96.0.10"), slice("web-a", "web", 8080, ips.map((ip) => ({ ip })))] as any);
    p.update(s(["10.244.1.1", "10.244.1.2", "10.244.1.3", "10.244.1.4"]), []);
    const before = eps(p, "10.96.0.10 . tcp . 80");
    const u = p.update(s(["10.244.1.1", "10.244.1.3", "10.244.1.4"]), []);
    const after = eps(p, "10.96.0.10 . tcp . 80");
    // 10.244.1.2 had slot 1: 10.244.1.4 (slot 3) moves there, the others stay.
    expect(after).toEqual([`10.96.0.10 . tcp . 80 . ${BASE} : 10.244.1.1 . 8080`, `10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.4 . 8080`, `10.96.0.10 . tcp . 80 . ${BASE + 2} : 10.244.1.3 . 8080`]);
    expect(before).toContain(`10.96.0.10 . tcp . 80 . ${BASE + 2} : 10.244.1.3 . 8080`);
    const d = u.delta.get("endpoints-ip-4")!;
    expect([...d.del].sort()).toEqual([`10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.2 . 8080`, `10.96.0.10 . tcp . 80 . ${BASE + 3} : 10.244.1.4 . 8080`]);
    expect([...d.add]).toEqual([`10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.4 . 8080`]);
  });

  test("Local policies: this node's endpoints in the local view; internalTrafficPolicy Local without one is dropped", () => {
    const p = new ProxyElements("n1");
    p.update(buildClusterState([
      svc("np", "10.96.0.11", { type: "NodePort", externalTrafficPolicy: "Local", ports: [{ name: "http", port: 80, targetPort: "http", nodePort: 30080 }] }),
      slice("np-a", "np", 8080, [{ ip: "10.244.1.2", node: "n1" }, { ip: "10.244.2.2", node: "n2" }]),
      svc("itp", "10.96.0.12", { internalTrafficPolicy: "Local" }),
      slice("itp-a", "itp", 8080, [{ ip: "10.244.2.3", node: "n2" }]),
    ] as any), []);
    expect([...p.elements.get("service-nodeports-4")!.keys()]).toEqual(["tcp . 30080 : goto external-local-np-4"]);
    expect([...p.elements.get("pick-local-np-4")!.keys()]).toEqual(["tcp . 30080 : goto pick-np-4-1-local"]);
    expect([...p.elements.get("endpoints-np-4")!.keys()].filter((e) => e.includes(`. ${BASE + 0x10000} :`))).toEqual([`tcp . 30080 . ${BASE + 0x10000} : 10.244.1.2 . 8080`]);
    expect([...p.elements.get("no-endpoints-ip-4")!.keys()]).toEqual(["10.96.0.12 . tcp . 80 : goto drop-svc"]);
    expect([...p.elements.get("hairpin-4")!.keys()]).toEqual(["10.244.1.2 . 10.244.1.2"]);
  });

  test("an unchanged Service is not recompiled: the next update has no delta", () => {
    const p = new ProxyElements("n1");
    const objs = [svc("web", "10.96.0.10"), slice("web-a", "web", 8080, [{ ip: "10.244.1.2" }]), svc("db", "10.96.0.11"), slice("db-a", "db", 5432, [{ ip: "10.244.1.3" }])];
    p.update(buildClusterState(objs as any), []);
    // Same objects, a new state (as a source's rebuild makes it): nothing to write.
    const u = p.update(buildClusterState(objs as any), []);
    expect([...u.delta.values()].every((d) => !d.add.size && !d.del.size)).toBe(true);
  });

  test("changes found by identity: a slice relabelled to another Service, a slice removed, a Service removed", () => {
    const p = new ProxyElements("n1");
    const web = svc("web", "10.96.0.10");
    const db = svc("db", "10.96.0.11");
    const a = slice("s-a", "web", 8080, [{ ip: "10.244.1.2" }]);
    const b = slice("s-b", "db", 5432, [{ ip: "10.244.1.3" }]);
    const ips = (key: string) => eps(p, key).map((e) => e.split(" : ")[1]).sort();
    p.update(buildClusterState([web, db, a, b] as any), []);
    expect(ips("10.96.0.10 . tcp . 80")).toEqual(["10.244.1.2 . 8080"]);
    // s-a now labelled for db: web loses its endpoint, db gains one.
    const moved = { ...a, metadata: { ...a.metadata, labels: { "kubernetes.io/service-name": "db" } } };
    p.update(buildClusterState([web, db, moved, b] as any), []);
    expect(ips("10.96.0.10 . tcp . 80")).toEqual([]);
    expect(ips("10.96.0.11 . tcp . 80")).toEqual(["10.244.1.2 . 8080", "10.244.1.3 . 5432"]);
    p.update(buildClusterState([web, db, moved] as any), []);
    expect(ips("10.96.0.11 . tcp . 80")).toEqual(["10.244.1.2 . 8080"]);
    p.update(buildClusterState([web, moved] as any), []);
    expect(ips("10.96.0.11 . tcp . 80")).toEqual([]);
    expect([...p.elements.get("no-endpoints-ip-4")!.keys()]).toEqual(["10.96.0.10 . tcp . 80 : goto reject-svc"]);
  });

  test("endpoint elements made from slots: size, has and deltas agree with the listed strings; two Services on one key are a union", () => {
    const p = new ProxyElements("n1");
    const listed = () => [...p.elements.get("endpoints-ip-4")!.keys()].sort();
    const web = svc("web", "10.96.0.10");
    // A second Service claiming the same cluster IP and port (the API refuses it; a source may still hand it out).
    const dup = svc("dup", "10.96.0.10");
    const sw = (ips: string[]) => slice("web-a", "web", 8080, ips.map((ip) => ({ ip })));
    const sd = slice("dup-a", "dup", 8080, [{ ip: "10.244.1.2" }, { ip: "10.244.9.9" }]);
    p.update(buildClusterState([web, sw(["10.244.1.2", "10.244.1.3"])] as any), []);
    const set = p.elements.get("endpoints-ip-4")!;
    expect(listed()).toEqual([`10.96.0.10 . tcp . 80 . ${BASE} : 10.244.1.2 . 8080`, `10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.3 . 8080`]);
    expect(set.size).toBe(2);
    for (const e of listed()) expect(set.has(e)).toBe(true);
    expect(set.has(`10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.4 . 8080`)).toBe(false);
    expect(set.has(`10.96.0.10 . tcp . 80 . ${BASE + 2} : 10.244.1.3 . 8080`)).toBe(false);
    // dup's slot 0 is web's element (counted once); its slot 1 differs from web's.
    let u = p.update(buildClusterState([web, sw(["10.244.1.2", "10.244.1.3"]), dup, sd] as any), []);
    expect(set.size).toBe(3);
    expect(listed().length).toBe(3);
    expect([...(u.delta.get("endpoints-ip-4")?.add ?? [])]).toEqual([`10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.9.9 . 8080`]);
    expect(u.delta.get("endpoints-ip-4")?.del.size ?? 0).toBe(0);
    // web goes: the element both wanted stays, web's own slot 1 goes.
    u = p.update(buildClusterState([dup, sd] as any), []);
    expect([...(u.delta.get("endpoints-ip-4")?.del ?? [])]).toEqual([`10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.1.3 . 8080`]);
    expect(u.delta.get("endpoints-ip-4")?.add.size ?? 0).toBe(0);
    expect(listed()).toEqual([`10.96.0.10 . tcp . 80 . ${BASE} : 10.244.1.2 . 8080`, `10.96.0.10 . tcp . 80 . ${BASE + 1} : 10.244.9.9 . 8080`]);
    expect(set.size).toBe(2);
    // Gone entirely: every element deleted, none listed.
    u = p.update(buildClusterState([] as any), []);
    expect(u.delta.get("endpoints-ip-4")?.del.size).toBe(2);
    expect(set.size).toBe(0);
    expect(listed()).toEqual([]);
  });
});
