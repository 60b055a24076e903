// The fake API server enforces the generated manifests' RBAC (here `mncni manifests
// --controller`: deploy/mncni.yaml plus the controller), so that the agent and controller
// tests run with the rights they ship with: each ServiceAccount bound there has a token;
// what its roles allow is served, anything else is 403 with the Status body the real API
// server sends (k8s.io/apiserver's forbiddenMessage), before the resource is even looked up.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { KubeApiError, KubeClient, loadKubeconfig, RESOURCES } from "../../src/kube/index.ts";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { controllerManifests } from "../controller/fixture.ts";

let api: FakeApiServer;
let agent: KubeClient;
let controller: KubeClient;
const client = (as: string) => new KubeClient(loadKubeconfig(api.writeKubeconfig(join(api.dir, `kc-${as}`), { as })), { attempts: 1 });
const statusOf = (p: Promise<unknown>) => p.then(() => 200, (e) => (e instanceof KubeApiError ? e.status : String(e)));

beforeAll(() => {
  api = FakeApiServer.start({ rbacManifests: controllerManifests() });
  api.put("nodes", { metadata: { name: "n1" } });
  api.put("pods", { metadata: { name: "p", namespace: "default" } });
  agent = client("mncni-agent");
  controller = client("mncni-controller");
});
afterAll(() => api.close());

describe("RBAC of the generated manifests", () => {
  test("the agent reads what it watches, ClusterNetworkPolicies included", async () => {
    expect(await statusOf(agent.listAll(RESOURCES.pods))).toBe(200);
    expect(await statusOf(agent.listAll(RESOURCES.networkPolicies))).toBe(200);
    expect(await statusOf(agent.get(RESOURCES.nodes, { name: "n1" }))).toBe(200);
    api.put("clusternetworkpolicies", { metadata: { name: "cnp" }, spec: { tier: "Admin", priority: 1, subject: { namespaces: {} } } });
    const cnps = await agent.listAll(RESOURCES.clusterNetworkPolicies);
    expect(cnps.items.map((o) => [o.kind, o.apiVersion, o.metadata?.name])).toEqual([["ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", "cnp"]]);
    expect(await statusOf(agent.patch(RESOURCES.nodes, { name: "n1", subresource: "status" }, { status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] } }))).toBe(200);
  });

  test("what the agent's role does not allow is 403 with the real server's Status, not retried, and changes nothing", async () => {
    const before = api.requests.length;
    const e = (await agent.delete(RESOURCES.nodes, { name: "n1" }).catch((x) => x)) as KubeApiError;
    expect(e).toBeInstanceOf(KubeApiError);
    expect(e.status).toBe(403);
    expect(e.body).toEqual({
      kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", reason: "Forbidden", code: 403,
      message: 'nodes "n1" is forbidden: User "system:serviceaccount:kube-system:mncni-agent" cannot delete resource "nodes" in API group "" at the cluster scope',
      details: { name: "n1", kind: "nodes" },
    });
    expect(api.requests.length - before).toBe(1);
    expect(api.getObject("nodes", "n1")).toBeDefined();
    expect(await statusOf(agent.patch(RESOURCES.pods, { name: "p", namespace: "default" }, { metadata: { labels: { a: "b" } } }))).toBe(403);
    // Authorization before lookup: a missing object is 403 too, not 404.
    expect(await statusOf(agent.delete(RESOURCES.pods, { name: "nothing", namespace: "default" }))).toBe(403);
    const lease = { metadata: { name: "l" }, spec: {} };
    const denied = (await agent.create(RESOURCES.leases, { namespace: "kube-system" }, lease).catch((x) => x)) as KubeApiError;
    expect((denied.body as { message: string }).message).toBe('leases.coordination.k8s.io is forbidden: User "system:serviceaccount:kube-system:mncni-agent" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"');
    expect(api.forbiddenRequests().every((r) => r.user === "system:serviceaccount:kube-system:mncni-agent")).toBe(true);
  });

  test("the controller's Role holds only in its own namespace; it reads pods (the endpoint-slice controller) but cannot change them", async () => {
    const lease = { metadata: { name: "leader" }, spec: { holderIdentity: "x" } };
    expect(await statusOf(controller.create(RESOURCES.leases, { namespace: "kube-system" }, lease))).toBe(200);
    expect(await statusOf(controller.create(RESOURCES.leases, { namespace: "default" }, lease))).toBe(403);
    expect(await statusOf(controller.listAll(RESOURCES.pods))).toBe(200);
    expect(await statusOf(controller.delete(RESOURCES.pods, { name: "p", namespace: "default" }))).toBe(403);
    expect(await statusOf(controller.patch(RESOURCES.nodes, { name: "n1" }, { spec: { podCIDRs: ["10.244.1.0/24"] } }))).toBe(200);
  });

  test("the server's own token is unrestricted; an unknown token is 401", async () => {
    const admin = new KubeClient(loadKubeconfig(api.writeKubeconfig(join(api.dir, "kc-admin"))), { attempts: 1 });
    expect(await statusOf(admin.listAll(RESOURCES.leases))).toBe(200);
    const nobody = new KubeClient(loadKubeconfig(api.writeKubeconfig(join(api.dir, "kc-nobody"), { token: "nope" })), { attempts: 1 });
    expect(await statusOf(nobody.listAll(RESOURCES.pods))).toBe(401);
  });
});
