// Services and EndpointSlices read from manifests (the directory source's path): defaults as
// the API defines them, addresses normalised, what cannot be used reported.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ManifestsDirSource, parseManifests, buildClusterState } from "../../src/cluster/index.ts";

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: apps}
spec:
  type: NodePort
  selector: {role: web}
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96:0:0::a"]
  ipFamilies: [IPv4, IPv6]
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
  externalIPs: [192.0.2.7, not-an-ip]
  sessionAffinity: ClientIP
  externalTrafficPolicy: Local
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: apps}
spec: {clusterIP: None, ports: [{port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: apps}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.11
  ports: [{port: 443, targetPort: 8443, nodePort: 30443}]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
status: {loadBalancer: {ingress: [{ip: 198.51.100.4}, {hostname: lb.example.com}, {ip: 198.51.100.5, ipMode: Proxy}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: apps, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- addresses: [10.244.1.5]
  nodeName: n1
  targetRef: {kind: Pod, name: web-1}
- addresses: [10.244.2.5]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.244.2.6]
  conditions: {ready: false}
`;

describe("Services and EndpointSlices in manifests", () => {
  const r = parseManifests(YAML, "svc.yaml");
  const state = buildClusterState(r.objects, r.invalid);

  test("a dual-stack NodePort Service: ports defaulted, named targetPort kept, bad externalIP reported", () => {
    expect(r.invalid).toEqual([]);
    const web = state.services.get("apps/web")!;
    expect(web).toMatchObject({
      type: "NodePort", clusterIPs: ["10.96.0.10", "fd00:96::a"], headless: false, externalIPs: ["192.0.2.7"],
      affinitySeconds: 10800, externalTrafficPolicy: "Local", internalTrafficPolicy: "Cluster", selector: { role: "web" },
    });
    expect(web.ports).toEqual([
      { name: "http", protocol: "TCP", port: 80, targetPort: "http", nodePort: 30080 },
      { name: "dns", protocol: "UDP", port: 53, targetPort: 53, nodePort: 30053 },
    ]);
    expect(web.problems).toEqual(['externalIP "not-an-ip" is not an IP address']);
    // healthCheckNodePort belongs to a Local LoadBalancer only.
    expect(web.healthCheckNodePort).toBeUndefined();
  });

  test("headless: no cluster IPs; a LoadBalancer's VIP ingress IPs only, its health check port and affinity timeout", () => {
    expect(state.services.get("apps/db")).toMatchObject({ headless: true, clusterIPs: [], type: "ClusterIP" });
    expect(state.services.get("apps/lb")).toMatchObject({ loadBalancerIPs: ["198.51.100.4"], healthCheckNodePort: 32000, affinitySeconds: 60, externalTrafficPolicy: "Local" });
  });

  test("an EndpointSlice: its Service from the label, conditions as the API defines their absence", () => {
    const s = state.endpointSlices.get("apps/web-abc")!;
    expect(s.service).toBe("web");
    expect(s.ports).toEqual([{ name: "http", protocol: "TCP", port: 8080 }, { name: "dns", protocol: "UDP", port: 5353 }]);
    expect(s.endpoints).toEqual([
      { addresses: ["10.244.1.5"], ready: true, serving: true, terminating: false, nodeName: "n1", pod: "apps/web-1" },
      { addresses: ["10.244.2.5"], ready: false, serving: true, terminating: true },
      { addresses: ["10.244.2.6"], ready: false, serving: false, terminating: false },
    ]);
  });
});

describe("the directory source", () => {
  const dir = mkdtempSync("/tmp/mncni-svc-dir-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("reads Services and EndpointSlices, and a change to a slice", async () => {
    writeFileSync(join(dir, "svc.yaml"), YAML);
    const src = new ManifestsDirSource(dir);
    await src.start();
    expect([...src.snapshot().state.services.keys()].sort()).toEqual(["apps/db", "apps/lb", "apps/web"]);
    writeFileSync(join(dir, "svc.yaml"), YAML.replace("10.244.1.5", "10.244.1.9"));
    src.rescan();
    expect(src.snapshot().state.endpointSlices.get("apps/web-abc")!.endpoints[0]!.addresses).toEqual(["10.244.1.9"]);
    src.close();
  });
});
