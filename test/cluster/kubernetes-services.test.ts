// The Kubernetes source with the Service proxy's kinds: Services (v1) and EndpointSlices
// (discovery.k8s.io/v1) listed and watched from the lab API server with the agent's own token,
// so deploy/'s RBAC is enforced on every request; without the option it asks for neither.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import { KubernetesSource } from "../../src/cluster/kubernetes.ts";
import { until } from "../helpers/until.ts";

setDefaultTimeout(30_000);
let dir = "";
let api: ApiServer;
const seen: string[] = [];

const service = (name: string, ip: string) => ({
  metadata: { name, namespace: "apps" },
  spec: { type: "ClusterIP", clusterIP: ip, clusterIPs: [ip], selector: { role: name }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
});
const slice = (name: string, svc: string, addrs: string[]) => ({
  metadata: { name, namespace: "apps", labels: { "kubernetes.io/service-name": svc } },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true }, nodeName: "n1", targetRef: { kind: "Pod", namespace: "apps", name: `p-${a}` } })),
});

beforeAll(() => {
  dir = mkdtempSync("/tmp/mncni-kube-svc-");
  api = new ApiServer({
    dir,
    intercept: (req, url) => {
      seen.push(`${req.method} ${url.pathname}`);
      return undefined;
    },
  }).listen();
  api.put("namespaces", { metadata: { name: "apps" } });
  api.put("nodes", { metadata: { name: "n1" }, spec: { podCIDRs: ["10.244.1.0/24"] }, status: { addresses: [{ type: "InternalIP", address: "10.225.0.1" }] } });
  api.put("services", service("web", "10.96.0.10"));
  api.put("endpointslices", slice("web-1", "web", ["10.244.1.5"]));
});

afterAll(() => {
  api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("with services: both kinds listed and watched with the agent's token; a change and a delete arrive", async () => {
  const src = new KubernetesSource(api.writeKubeconfig("agent-n1"), { nodeName: "n1", services: true, debounceMs: 10 });
  try {
    await src.start();
    const s0 = src.snapshot();
    expect(s0.stale).toBeUndefined();
    expect(s0.state.unknown).toBeUndefined();
    expect(s0.state.services.get("apps/web")).toMatchObject({ clusterIPs: ["10.96.0.10"], ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: "http" }] });
    expect(s0.state.endpointSlices.get("apps/web-1")).toMatchObject({ service: "web", endpoints: [{ addresses: ["10.244.1.5"], ready: true, pod: "apps/p-10.244.1.5" }] });
    let changes = 0;
    src.watch(() => changes++);
    api.put("endpointslices", slice("web-1", "web", ["10.244.1.5", "10.244.1.6"]));
    api.put("services", service("api", "10.96.0.20"));
    await until("the new endpoint and Service", () => src.snapshot().state.endpointSlices.get("apps/web-1")?.endpoints.length === 2 && src.snapshot().state.services.has("apps/api"));
    api.remove("services", "web", "apps");
    await until("the deleted Service gone", () => !src.snapshot().state.services.has("apps/web"));
    expect(changes).toBeGreaterThan(0);
    expect(src.snapshot().stale).toBeUndefined();
    expect(seen.some((r) => r.startsWith("GET /apis/discovery.k8s.io/v1/endpointslices"))).toBe(true);
    expect(seen.some((r) => r.startsWith("GET /api/v1/services"))).toBe(true);
  } finally {
    src.close();
  }
});

test("without services: neither kind is asked for, and the state has none", async () => {
  seen.length = 0;
  const src = new KubernetesSource(api.writeKubeconfig("agent-n1"), { nodeName: "n1" });
  try {
    await src.start();
    expect(src.snapshot().state.services.size).toBe(0);
    expect(seen.filter((r) => /services|endpointslices/.test(r))).toEqual([]);
  } finally {
    src.close();
  }
});
