// The agent fed by the Kubernetes API (issue 12, item 1 and 2), run for real: the compiled
// agent with --source kubernetes:KUBECONFIG in a node namespace (underlay 10.224.0.0/24, peers
// on-link), the fake API server listening inside that namespace. Checked with `ip -j route`,
// /readyz, /metrics, and the requests the server recorded.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentMetric, agentNode, removeAgentNode } from "./agent-process.ts";
import { ipJson, netnsPath } from "../helpers/netns.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MNCNI = join(ROOT, "dist/mncni");
const CLUSTER = "10.0.0.0/8";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let kubeconfig = "";
let agent: Subprocess | undefined;
setDefaultTimeout(60_000);

const node = (name: string, ip: string, cidrs: string[]) => ({
  metadata: { name },
  spec: { podCIDRs: cidrs },
  status: { addresses: [{ type: "InternalIP", address: ip }], images: [{ names: ["big"], sizeBytes: 1 }] },
});
const putNode = (name: string, ip: string, cidrs: string[]) => api.put("nodes", node(name, ip, cidrs));

const args = (source: string, extra: string[] = []) => agentArgv({ mncni: MNCNI, tmp, node: "me", source, clusterCidr: CLUSTER }, extra);
type R = { dst: string; gateway?: string };
const routes = () => ipJson<R[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort().join(", ");
const curl = (path: string) => agentHttp(ns, path);
const ready = () => curl("/readyz").endsWith("200");
const metric = (name: string, labels: string) => agentMetric(ns, name, labels);
/** Patches of the NetworkUnavailable condition (the pod MTU condition is patched on nodes/status too). */
const conditionPatches = () => api.requestsTo("PATCH", "/api/v1/nodes/me/status").filter((r) => JSON.stringify(r.body ?? "").includes("NetworkUnavailable"));
const nodeLists = () => api.requests.filter((r) => r.method === "GET" && r.path === "/api/v1/nodes" && !r.query.watch).length;


beforeAll(async () => {
  if (!existsSync(MNCNI)) throw new Error(`${MNCNI} missing: run make build first`);
  ({ ns, tmp } = agentNode("ku", "10.224.0"));
  api = FakeApiServer.start({ netns: netnsPath(ns), bookmarkIntervalMs: 500 });
  // The agent's own ServiceAccount: what deploy/ grants it, enforced by the server (403 otherwise).
  kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
  putNode("me", "10.224.0.1", ["10.244.1.0/24"]);
  putNode("n2", "10.224.0.2", ["10.244.2.0/24"]);
  api.put("namespaces", { metadata: { name: "default", labels: { a: "b" } } });
  api.put("pods", { metadata: { name: "p1", namespace: "default", labels: { app: "x" }, annotations: { big: "x".repeat(1000) } }, spec: { nodeName: "n2", containers: [{ name: "c", image: "i" }] }, status: { podIP: "10.244.2.5", podIPs: [{ ip: "10.244.2.5" }] } });
  // Every test below starts from a running, ready agent: none depends on another having started it.
  agent = spawn(["ip", "netns", "exec", ns, ...args(`kubernetes:${kubeconfig}`)], { stdout: "ignore", stderr: "pipe" });
  await until("ready", ready);
});

afterAll(async () => {
  api?.close();
  await removeAgentNode(tmp, agent);
});

describe("--source kubernetes:KUBECONFIG", () => {
  test("the initial list programs routes, /readyz turns ready, the Node's NetworkUnavailable is set to False", async () => {
    expect(routes()).toBe("10.244.2.0/24 via 10.224.0.2");
    await until("the status patch", () => conditionPatches().some((r) => r.status === 200));
    const patches = conditionPatches();
    expect(patches[0]!.contentType).toBe("application/strategic-merge-patch+json");
    const cond = api.getObject("nodes", "me")!.status.conditions.find((c: { type: string }) => c.type === "NetworkUnavailable");
    expect(cond).toMatchObject({ status: "False", reason: "MncniIsUp" });
    expect(typeof cond.message).toBe("string");
    expect(Number.isNaN(Date.parse(cond.lastTransitionTime))).toBe(false);
    // Only when it changes: passes every second do not patch again.
    await Bun.sleep(3000);
    expect(conditionPatches().length).toBe(1);
    // Objects per kind, the ClusterNetworkPolicy CRD's too (served, none yet).
    expect(metric("mncni_agent_kube_objects", 'kind="Node"')).toBe(2);
    expect(metric("mncni_agent_kube_objects", 'kind="Pod"')).toBe(1);
    expect(metric("mncni_agent_kube_objects", 'kind="ClusterNetworkPolicy"')).toBe(0);
    expect(metric("mncni_agent_kube_resource_missing", 'kind="ClusterNetworkPolicy"')).toBeNaN();
    expect(metric("mncni_agent_kube_last_sync_timestamp_seconds", 'kind="Node"')).toBeGreaterThan(0);
  });

  test("a NetworkUnavailable condition set back to True by someone else is set to False again", async () => {
    api.put("nodes", { ...api.getObject("nodes", "me")!, status: { ...api.getObject("nodes", "me")!.status, conditions: [{ type: "NetworkUnavailable", status: "True", reason: "NoRouteCreated" }] } });
    await until("the second patch", () => api.getObject("nodes", "me")!.status.conditions.some((c: { reason: string }) => c.reason === "MncniIsUp"));
  });

  test("routes follow Node add, change and delete through the watch", async () => {
    putNode("n3", "10.224.0.3", ["10.244.3.0/24"]);
    await until("n3's route", () => routes() === "10.244.2.0/24 via 10.224.0.2, 10.244.3.0/24 via 10.224.0.3");
    putNode("n3", "10.224.0.33", ["10.244.3.0/24"]);
    await until("n3's new gateway", () => routes() === "10.244.2.0/24 via 10.224.0.2, 10.244.3.0/24 via 10.224.0.33");
    api.remove("nodes", "n3");
    await until("n3's route gone", () => routes() === "10.244.2.0/24 via 10.224.0.2");
  });

  test("a resourceVersion too old (410 Gone) relists", async () => {
    const lists = nodeLists();
    // Away for a moment; meanwhile a change, and the history it would resume from is compacted.
    api.stop();
    putNode("n4", "10.224.0.4", ["10.244.4.0/24"]);
    api.compact();
    api.start();
    await until("n4's route", () => routes().includes("10.244.4.0/24 via 10.224.0.4"));
    await until("a relist", () => nodeLists() > lists);
    expect(metric("mncni_agent_kube_watch_restarts_total", 'kind="Node",reason="expired"')).toBeGreaterThanOrEqual(1);
    api.remove("nodes", "n4");
    await until("n4's route gone", () => routes() === "10.244.2.0/24 via 10.224.0.2");
  });

  test("a dropped stream is resumed from the last resourceVersion", async () => {
    const lists = nodeLists();
    // Nodes, Pods, Namespaces, NetworkPolicies, ClusterNetworkPolicies.
    await until("five open watches", () => api.openWatches >= 5);
    expect(api.dropWatches()).toBeGreaterThanOrEqual(5);
    putNode("n5", "10.224.0.5", ["10.244.5.0/24"]);
    await until("n5's route", () => routes().includes("10.244.5.0/24 via 10.224.0.5"));
    expect(nodeLists()).toBe(lists); // resumed, not relisted
    api.remove("nodes", "n5");
    await until("n5's route gone", () => routes() === "10.244.2.0/24 via 10.224.0.2");
  });

  // 20 s: long enough for the informers' backoff (0.5 s doubling) to be waiting 16 s between
  // tries when the server comes back; the minute it was cost `make test` 40 s more for nothing more.
  test("the API server down for a while changes nothing on the node; it is picked up again after", async () => {
    api.stop();
    await until("not ready", () => !ready(), 30_000);
    const t0 = Date.now();
    while (Date.now() - t0 < 20_000) {
      expect(routes()).toBe("10.244.2.0/24 via 10.224.0.2");
      expect(ready()).toBe(false);
      await Bun.sleep(2000);
    }
    expect(agent!.exitCode).toBeNull();
    // A change made while it was away arrives once it is back.
    putNode("n6", "10.224.0.6", ["10.244.6.0/24"]);
    api.start();
    await until("n6's route", () => routes() === "10.244.2.0/24 via 10.224.0.2, 10.244.6.0/24 via 10.224.0.6", 45_000);
    await until("ready again", ready, 45_000);
  }, 180_000);
});

describe("--source kubernetes (in-cluster service account)", () => {
  test("the service-account files and KUBERNETES_SERVICE_* lead to the API server", async () => {
    const sa = api.writeServiceAccountDir(join(tmp, "sa"), "kube-system", { as: "mncni-agent" });
    const env = { ...process.env, KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port), MNCNI_SERVICE_ACCOUNT_DIR: sa } as Record<string, string>;
    const before = api.requests.length;
    // Not spawnSync: the API server answers from this process's event loop.
    const p = spawn(["ip", "netns", "exec", ns, ...args("kubernetes", ["--once", "--metrics-addr", "off", "--log-file", join(tmp, "once.log")])], { env, stdout: "ignore", stderr: "ignore" });
    expect(await p.exited).toBe(0);
    expect(api.requests.slice(before).some((q) => q.path === "/api/v1/nodes" && q.status === 200)).toBe(true);
    expect(routes()).toContain("10.244.2.0/24 via 10.224.0.2");
  });
});

describe("RBAC", () => {
  test("every request the agent made above was one deploy/'s role for it allows (the server answers 403 otherwise)", () => {
    expect(api.requests.filter((r) => r.user === "system:serviceaccount:kube-system:mncni-agent").length).toBeGreaterThan(0);
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });
});
