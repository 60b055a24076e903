// The compiled agent with --source kubernetes:KUBECONFIG against the lab API server (not the
// test fake), listening in the agent's node namespace and, for kubectl, on this machine's
// 127.0.0.1 (one store behind both sockets), with the agent's own token: deploy/'s
// RBAC is enforced on every request the agent makes, so this also checks that the agent
// needs no more than its ClusterRole grants. Checked with `ip -j route`, /metrics and the
// objects the server stores.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { ApiServer } from "../../src/lab/apiserver/server.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentMetric, agentNode, removeAgentNode } from "./agent-process.ts";
import { ipJson, netnsPath } from "../helpers/netns.ts";

const MNCNI = join(resolve(import.meta.dir, "../.."), "dist/mncni");
setDefaultTimeout(60_000);

let ns = "";
let tmp = "";
let dir = "";
let api: ApiServer;
let agent: Subprocess | undefined;
let stderr = "";

const node = (name: string, ip: string, cidr: string) => ({
  metadata: { name },
  spec: { podCIDRs: [cidr] },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});
type R = { dst: string; gateway?: string };
const routes = () => ipJson<R[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort().join(", ");

beforeAll(() => {
  if (!existsSync(MNCNI)) throw new Error(`${MNCNI} missing: run make build first`);
  ({ ns, tmp } = agentNode("kl", "10.225.0"));
  dir = mkdtempSync("/tmp/mncni-labapi-agent-");
  api = new ApiServer({ dir, also: [{ hostname: "127.0.0.1", netns: netnsPath(ns) }], bookmarkIntervalMs: 500 }).listen();
  api.put("namespaces", { metadata: { name: "default", labels: { "kubernetes.io/metadata.name": "default" } } });
  api.put("nodes", node("me", "10.225.0.1", "10.244.1.0/24"));
  api.put("nodes", node("n2", "10.225.0.2", "10.244.2.0/24"));
  api.put("clusternetworkpolicies", { metadata: { name: "baseline" }, spec: { tier: "Baseline", priority: 10, subject: { namespaces: {} }, ingress: [{ action: "Accept", from: [{ namespaces: {} }] }] } });
});

afterAll(async () => {
  await removeAgentNode(tmp, agent);
  api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the agent syncs from the lab API server with its own token: routes follow Nodes, its Node's status is patched, ClusterNetworkPolicies are served", async () => {
  const kubeconfig = api.writeKubeconfig("agent-me", join(tmp, "kubeconfig"));
  agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" })], { stdout: "ignore", stderr: "pipe" });
  void (async () => {
    for await (const c of agent!.stderr as ReadableStream<Uint8Array>) stderr += new TextDecoder().decode(c);
  })();
  await until("routes from the initial list", () => routes() === "10.244.2.0/24 via 10.225.0.2");
  await until("NetworkUnavailable=False on its Node", () =>
    (api.store.get("nodes", "me")?.status?.conditions ?? []).some((c: any) => c.type === "NetworkUnavailable" && c.status === "False"));
  expect(agentMetric(ns, "mncni_agent_kube_objects", 'kind="ClusterNetworkPolicy"')).toBe(1);
  expect(agentMetric(ns, "mncni_agent_kube_objects", 'kind="Node"')).toBe(2);
  // A change through the watch.
  api.put("nodes", node("n3", "10.225.0.3", "10.244.3.0/24"));
  await until("a route for the new Node", () => routes() === "10.244.2.0/24 via 10.225.0.2, 10.244.3.0/24 via 10.225.0.3");
  api.remove("nodes", "n2");
  await until("the deleted Node's route goes", () => routes() === "10.244.3.0/24 via 10.225.0.3");
  // kubectl on the machine's socket sees what the agent wrote through its node's socket.
  const kubectl = Bun.spawn(["kubectl", "--kubeconfig", api.writeKubeconfig("admin"), "get", "node", "me", "-o", "jsonpath={.status.conditions[?(@.type=='NetworkUnavailable')].status}"], { stdout: "pipe" });
  expect(await new Response(kubectl.stdout).text()).toBe("False");
  // Nothing the agent asked for was refused by RBAC.
  expect(stderr).not.toMatch(/forbidden/i);
}, 60_000);
