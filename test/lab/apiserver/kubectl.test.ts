// The lab API server with kubectl (/usr/bin/kubectl) as the client: what `kubectl get`,
// apply, delete, label, describe and --watch do against it, RBAC per token (403 as
// kube-apiserver words it), 422 with field paths, 409 on a stale write.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiServer } from "../../../src/lab/apiserver/server.ts";
import { until } from "../../helpers/until.ts";

let srv: ApiServer;
let dir: string;
let admin: string;

/** kubectl as a child (async: the server runs in this process). */
async function kubectl(args: string[], kubeconfig = admin): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(["kubectl", "--kubeconfig", kubeconfig, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

const NP = (selector: string, port: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-http
  namespace: default
spec:
  podSelector:
    matchLabels: {app: ${selector}}
  ingress:
  - ports:
    - {port: ${port}, protocol: TCP}
`;

beforeAll(() => {
  if (!Bun.which("kubectl")) throw new Error("kubectl is missing: these tests use it as the client (1.32 on the test machines, /usr/bin/kubectl)");
  dir = mkdtempSync("/tmp/mncni-labapi-test-");
  srv = new ApiServer({ dir }).listen();
  admin = srv.writeKubeconfig("admin");
  srv.put("namespaces", { metadata: { name: "default", labels: { "kubernetes.io/metadata.name": "default" } } });
  const node = srv.put("nodes", { metadata: { name: "node1" }, spec: { podCIDRs: ["10.244.1.0/24"] }, status: { conditions: [{ type: "Ready", status: "True" }], addresses: [{ type: "InternalIP", address: "192.168.50.1" }] } });
  srv.put("pods", { metadata: { name: "web", namespace: "default", labels: { app: "web" } }, spec: { nodeName: "node1", containers: [{ name: "c", image: "lab", ports: [{ name: "http", containerPort: 80 }] }] }, status: { phase: "Running", podIP: "10.244.1.5" } });
  srv.put("clusternetworkpolicies", { metadata: { name: "deny-all" }, spec: { tier: "Baseline", priority: 10, subject: { namespaces: {} }, ingress: [{ action: "Deny", from: [{ namespaces: {} }] }] } });
  srv.put("events", { metadata: { name: "node1.1", namespace: "default" }, involvedObject: { kind: "Node", name: "node1", uid: node.metadata!.uid }, reason: "MTUMismatch", type: "Warning", message: "peer publishes another pod MTU", lastTimestamp: new Date().toISOString() });
});

afterAll(() => {
  srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("kubectl against the lab API server", () => {
  test("get nodes,pods,networkpolicies,clusternetworkpolicies -A prints the kinds' columns", async () => {
    const r = await kubectl(["get", "nodes,pods,networkpolicies,clusternetworkpolicies", "-A"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n").map((l) => l.trim().split(/\s+/));
    expect(lines).toContainEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION", "POD-CIDRS"]);
    expect(lines.find((l) => l[0] === "node/node1")).toEqual(expect.arrayContaining(["Ready", "10.244.1.0/24"]));
    expect(lines).toContainEqual(["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]);
    expect(lines.find((l) => l[1] === "pod/web")).toEqual(expect.arrayContaining(["default", "Running", "10.244.1.5", "node1"]));
    expect(r.out).toMatch(/NAME\s+TIER\s+PRIORITY\s+AGE\n/);
    expect(r.out).toMatch(/clusternetworkpolicy.policy.networking.k8s.io\/deny-all\s+Baseline\s+10\s/);
  });

  test("apply -f and delete -f of a NetworkPolicy with a named port", async () => {
    const file = join(dir, "np.yaml");
    writeFileSync(file, NP("web", "http"));
    expect((await kubectl(["apply", "-f", file])).out).toContain("networkpolicy.networking.k8s.io/allow-http created");
    expect(srv.store.get("networkpolicies", "default/allow-http")?.spec.ingress[0].ports[0]).toEqual({ port: "http", protocol: "TCP" });
    expect((await kubectl(["apply", "-f", file])).out).toContain("unchanged");
    writeFileSync(file, NP("api", "http"));
    expect((await kubectl(["apply", "-f", file])).out).toContain("configured");
    const got = JSON.parse((await kubectl(["get", "networkpolicy", "allow-http", "-o", "json"])).out);
    expect(got.spec.podSelector).toEqual({ matchLabels: { app: "api" } });
    expect(got.metadata.generation).toBe(2);
    const table = await kubectl(["get", "netpol"]);
    expect(table.out.split("\n")[1]!.split(/\s+/).slice(0, 2)).toEqual(["allow-http", "app=api"]);
    expect((await kubectl(["delete", "-f", file])).out).toContain('networkpolicy.networking.k8s.io "allow-http" deleted');
    expect(srv.store.get("networkpolicies", "default/allow-http")).toBeUndefined();
  });

  test("an invalid object gets 422 naming the field", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, NP("web", "a-port-name-far-too-long"));
    const r = await kubectl(["apply", "-f", file]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("spec.ingress[0].ports[0].port: Invalid value");
    writeFileSync(file, "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: bad}\nspec: {tier: Middle, priority: 2000, subject: {namespaces: {}}}\n");
    const c = await kubectl(["apply", "-f", file]);
    expect(c.err).toContain("spec.tier: Unsupported value");
    expect(c.err).toContain("spec.priority: Invalid value: 2000");
    expect(srv.store.get("clusternetworkpolicies", "bad")).toBeUndefined();
  });

  test("label pod, seen by get --watch", async () => {
    const p = Bun.spawn(["kubectl", "--kubeconfig", admin, "get", "pods", "--watch", "-o", "custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier"], { stdout: "pipe", stderr: "pipe" });
    let seen = "";
    const reader = (async () => {
      for await (const chunk of p.stdout as ReadableStream<Uint8Array>) seen += new TextDecoder().decode(chunk);
    })();
    try {
      await until("the watch lists the pod", () => /web\s+<none>/.test(seen));
      expect((await kubectl(["label", "pod", "web", "tier=front"])).out).toContain("pod/web labeled");
      await until("the watch shows the label", () => /web\s+front/.test(seen));
    } finally {
      p.kill();
      await reader.catch(() => {});
    }
    expect(srv.store.get("pods", "default/web")?.metadata?.labels).toEqual({ app: "web", tier: "front" });
    await kubectl(["label", "pod", "web", "tier-"]);
    expect(srv.store.get("pods", "default/web")?.metadata?.labels).toEqual({ app: "web" });
  });

  test("describe node and get events", async () => {
    const d = await kubectl(["describe", "node", "node1"]);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/PodCIDRs:\s+10\.244\.1\.0\/24/);
    expect(d.out).toMatch(/default\s+web/);
    expect(d.out).toContain("MTUMismatch");
    const e = await kubectl(["get", "events"]);
    expect(e.out.split("\n")[0]!.split(/\s{2,}/)).toEqual(["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    expect(e.out).toMatch(/Warning\s+MTUMismatch\s+node\/node1\s+peer publishes another pod MTU/);
  });

  test("a watch with a label selector sees a pod leave (DELETED) and enter (ADDED) its selection", async () => {
    const rv = srv.store.resourceVersion;
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dweb&resourceVersion=${rv}`, { headers: { Authorization: `Bearer ${srv.tokens.tokenOf("admin")}` }, tls: { ca: Bun.file(srv.certs.ca) }, signal: ac.signal });
    const events: string[] = [];
    const reading = (async () => {
      let buf = "";
      for await (const chunk of res.body as ReadableStream<Uint8Array>) {
        buf += new TextDecoder().decode(chunk);
        const parts = buf.split("\n");
        buf = parts.pop()!;
        for (const l of parts) if (l.trim()) events.push(`${JSON.parse(l).type} ${JSON.parse(l).object.metadata.labels.app}`);
      }
    })();
    await kubectl(["label", "pod", "web", "app=other", "--overwrite"]);
    await kubectl(["label", "pod", "web", "tier=x"]);
    await kubectl(["label", "pod", "web", "app=web", "--overwrite"]);
    await until("both transitions", () => events.length >= 2);
    ac.abort();
    await reading.catch(() => {});
    // The label change outside the selection is not sent.
    expect(events).toEqual(["DELETED other", "ADDED web"]);
    await kubectl(["label", "pod", "web", "tier-"]);
  });

  test("create namespace and create service send protobuf: decoded as the objects they encode", async () => {
    const ns = await kubectl(["create", "namespace", "proto"]);
    expect(ns.err).toBe("");
    expect(ns.out).toBe("namespace/proto created\n");
    const created = JSON.parse((await kubectl(["get", "namespace", "proto", "-o", "json"])).out);
    expect(created.metadata.labels).toEqual({ "kubernetes.io/metadata.name": "proto" });
    expect(created.status).toEqual({ phase: "Active" });
    const svc = await kubectl(["create", "service", "nodeport", "web", "--tcp=8080:http", "-n", "proto"]);
    expect(svc.err).toBe("");
    const s = JSON.parse((await kubectl(["get", "service", "web", "-n", "proto", "-o", "json"])).out);
    // An int-or-string port by name, the zero values (nodePort 0, clusterIP "") left out as Go's JSON does.
    expect(s.spec).toEqual({ type: "NodePort", selector: { app: "web" }, ports: [{ name: "8080-http", protocol: "TCP", port: 8080, targetPort: "http" }] });
    // What the server does not serve is 404 whatever the body's encoding; a bad name 422.
    expect((await kubectl(["create", "configmap", "c", "--from-literal=a=b"])).err).toContain("the server could not find the requested resource");
    expect((await kubectl(["create", "namespace", "Proto"])).err).toContain('metadata.name: Invalid value: "Proto"');
    await kubectl(["delete", "namespace", "proto"]);
  });

  test("a stale write gets 409", async () => {
    const pod = JSON.parse((await kubectl(["get", "pod", "web", "-o", "json"])).out);
    await kubectl(["annotate", "pod", "web", "x=1"]);
    const file = join(dir, "stale.json");
    writeFileSync(file, JSON.stringify(pod));
    const r = await kubectl(["replace", "-f", file]);
    expect(r.err).toContain("Operation cannot be fulfilled on pods \"web\": the object has been modified");
  });
});

describe("RBAC of deploy/ per token", () => {
  test("a token without a role gets 403 with kube-apiserver's message", async () => {
    const nobody = srv.writeKubeconfig("nobody");
    const r = await kubectl(["get", "pods"], nobody);
    expect(r.err).toContain('Error from server (Forbidden): pods is forbidden: User "lab:nobody" cannot list resource "pods" in API group "" in the namespace "default"');
    const raw = await kubectl(["get", "--raw", "/api/v1/nodes/node1"], nobody);
    expect(raw.err).toContain("Forbidden");
    expect((await kubectl(["get", "--raw", "/version"], nobody)).code).toBe(0);
    // No token: 401, except what kube-apiserver shows anyone.
    const tls = { ca: Bun.file(srv.certs.ca) };
    expect((await fetch(`${srv.url}/api/v1/nodes`, { tls })).status).toBe(401);
    expect((await fetch(`${srv.url}/api`, { tls })).status).toBe(401);
    expect(await (await fetch(`${srv.url}/version`, { tls })).json()).toMatchObject({ major: "1", minor: "32" });
    expect(await (await fetch(`${srv.url}/readyz`, { tls })).text()).toBe("ok");
  });

  test("the agent's token reads, patches its Node's status, and cannot patch Nodes", async () => {
    const agent = srv.writeKubeconfig("agent-node1");
    expect((await kubectl(["get", "nodes,pods,networkpolicies,clusternetworkpolicies", "-A"], agent)).code).toBe(0);
    const label = await kubectl(["label", "node", "node1", "evil=yes"], agent);
    expect(label.err).toContain('nodes "node1" is forbidden: User "system:serviceaccount:kube-system:mncni-agent" cannot patch resource "nodes" in API group "" at the cluster scope');
    expect(srv.store.get("nodes", "node1")?.metadata?.labels?.evil).toBeUndefined();
    // As the agent does it: one PATCH of nodes/status (kubectl would GET first, which the role does not allow).
    const cond = await fetch(`${srv.url}/api/v1/nodes/node1/status`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${srv.tokens.tokenOf("agent-node1")}`, "Content-Type": "application/strategic-merge-patch+json" },
      body: JSON.stringify({ status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] } }),
      tls: { ca: Bun.file(srv.certs.ca) },
    });
    expect(cond.status).toBe(200);
    expect(srv.store.get("nodes", "node1")?.status.conditions.map((c: any) => c.type)).toEqual(["Ready", "NetworkUnavailable"]);
    const file = join(dir, "agent-np.yaml");
    writeFileSync(file, NP("web", "http"));
    expect((await kubectl(["apply", "-f", file], agent)).err).toContain('User "system:serviceaccount:kube-system:mncni-agent" cannot create resource "networkpolicies" in API group "networking.k8s.io" in the namespace "default"');
  });

  test("the controller's token patches Nodes, reads pods (the endpoint-slice controller) but does not change them", async () => {
    const ctl = srv.writeKubeconfig("controller");
    expect((await kubectl(["label", "node", "node1", "zone=a"], ctl)).out).toContain("node/node1 labeled");
    expect((await kubectl(["label", "pod", "web", "x=y"], ctl)).err).toContain('User "system:serviceaccount:kube-system:mncni-controller" cannot patch resource "pods"');
  });
});
