// Pod MTU compared between nodes (issue 14): the compiled agent with --source kubernetes in a
// node namespace publishes its pod MTU on its Node's status (condition MncniPodMTU, a strategic
// merge patch of nodes/status: issue 24 item 11, the agent may not patch Nodes), reads the
// peers' from the watch, and reports a peer with another MTU as a warning (/readyz body, the
// node stays ready), a metric and a Warning Event on its Node, changing nothing on the node.
// Every request it makes is one deploy/mncni.yaml's ClusterRole allows. Checked with the
// requests and objects of the fake API server, /readyz, /metrics and `ip -j route`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentMetric, agentNode, removeAgentNode } from "./agent-process.ts";
import { ipJson, netnsPath } from "../helpers/netns.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MNCNI = process.env.MNCNI_BIN ?? join(ROOT, "dist/mncni");
const CONDITION = "MncniPodMTU";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let agent: Subprocess | undefined;
setDefaultTimeout(60_000);

const node = (name: string, ip: string, cidrs: string[], mtu?: string) => ({
  metadata: { name, annotations: { other: "x" } },
  spec: { podCIDRs: cidrs },
  status: { addresses: [{ type: "InternalIP", address: ip }], ...(mtu !== undefined ? { conditions: [{ type: CONDITION, status: "True", reason: "Published", message: mtu }] } : {}) },
});
const curl = (path: string) => agentHttp(ns, path);
const readyz = () => curl("/readyz");
const metric = (name: string, labels = "") => agentMetric(ns, name, labels);
const hasMetric = (name: string, labels: string) => new RegExp(`^${name}\\{${labels}\\} `, "m").test(curl("/metrics"));
const routes = () => ipJson<{ dst: string; gateway?: string }[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort().join(", ");
const mtuEvents = () => api.objects("events").filter((e) => e.reason === "PodMTUMismatch") as unknown as { type: string; message: string; involvedObject: { kind: string; name: string }; source: { component: string } }[];
type Condition = { type: string; status: string; reason?: string; message?: string };
const myCondition = () => (api.getObject("nodes", "me")?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === CONDITION);
const myPublished = () => myCondition()?.message;
/** Patches of the pod MTU condition (the NetworkUnavailable condition is patched on nodes/status too). */
const mtuPatches = () => api.requestsTo("PATCH", "/api/v1/nodes/me").filter((r) => JSON.stringify(r.body ?? "").includes(CONDITION));


beforeAll(() => {
  if (!existsSync(MNCNI)) throw new Error(`${MNCNI} missing: run make build first`);
  ({ ns, tmp } = agentNode("mtu", "10.225.0"));
  api = FakeApiServer.start({ netns: netnsPath(ns) });
  api.put("nodes", node("me", "10.225.0.1", ["10.244.1.0/24"]));
  api.put("nodes", node("n2", "10.225.0.2", ["10.244.2.0/24"]));
});

afterAll(async () => {
  api?.close();
  await removeAgentNode(tmp, agent);
});

describe("pod MTU published and compared (--source kubernetes)", () => {
  let own = 0;

  test("the agent publishes the pod MTU of its conflist as a condition on its Node's status, once; it never patches a Node itself", async () => {
    // The agent's own ServiceAccount: what deploy/ grants it, enforced by the server (403 otherwise).
    const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" })], { stdout: "ignore", stderr: "pipe" });
    await until("ready", () => readyz().endsWith("200"));
    own = metric("mncni_agent_pod_mtu");
    expect(own).toBeGreaterThan(0);
    await until("the condition", () => myPublished() !== undefined);
    expect(myCondition()).toMatchObject({ status: "True", reason: "Published", message: String(own) });
    const patches = mtuPatches();
    expect(patches.map((r) => [r.path, r.contentType, r.status])).toEqual([["/api/v1/nodes/me/status", "application/strategic-merge-patch+json", 200]]);
    // Passes every second do not patch again while the Node carries it.
    await Bun.sleep(3000);
    expect(mtuPatches().length).toBe(1);
    expect(metric("mncni_agent_pod_mtu_patches_total")).toBe(1);
    // Only nodes/status is written; the annotation earlier versions used is not.
    expect(api.requestsTo("PATCH", "/api/v1/nodes/").filter((r) => !r.path.endsWith("/status"))).toEqual([]);
    expect(api.getObject("nodes", "me")?.metadata?.annotations?.["mncni.io/pod-mtu"]).toBeUndefined();
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(hasMetric("mncni_agent_pod_mtu_mismatch", 'node="n2"')).toBe(false);
  });

  test("a peer that publishes another MTU is a warning on /readyz and a metric; the node stays ready, nothing is refused", async () => {
    api.put("nodes", node("n2", "10.225.0.2", ["10.244.2.0/24"], String(own - 100)));
    await until("the mismatch metric", () => metric("mncni_agent_pod_mtu_mismatch", 'node="n2"') === own - 100);
    // Reported, not a readiness failure: a rolling MTU change would otherwise take every node out.
    const body = readyz();
    expect(body.endsWith("200")).toBe(true);
    expect(body).toContain(`node "n2" publishes pod MTU ${own - 100}, this node's is ${own}`);
    expect(JSON.parse(curl("/readyz?format=json").replace(/\s*\d+$/, "")).warnings).toEqual([expect.stringContaining(`node "n2" publishes pod MTU ${own - 100}`)]);
    expect(metric("mncni_agent_ready")).toBe(1);
    expect(metric("mncni_agent_warnings")).toBe(1);
    // One Warning Event on this node's Node, as `kubectl describe node` shows it; not one per pass.
    await until("the Node event", () => mtuEvents().length === 1);
    const ev = mtuEvents()[0]!;
    expect([ev.type, ev.involvedObject.kind, ev.involvedObject.name, ev.source.component]).toEqual(["Warning", "Node", "me", "mncni-agent"]);
    expect(ev.message).toContain(`node "n2" publishes pod MTU ${own - 100}, this node's is ${own}`);
    await Bun.sleep(2500);
    expect(mtuEvents().length).toBe(1);
    // The data plane is up, so the Node's NetworkUnavailable condition stays False.
    expect(api.getObject("nodes", "me")?.status?.conditions?.find((c: { type: string }) => c.type === "NetworkUnavailable")?.status).toBe("False");
    // The route to the peer stays, and this node's MTU is its own.
    expect(routes()).toBe("10.244.2.0/24 via 10.225.0.2");
    expect(metric("mncni_agent_pod_mtu")).toBe(own);
    expect(myPublished()).toBe(String(own));
  });

  test("the peer publishing the same MTU clears it", async () => {
    api.put("nodes", node("n2", "10.225.0.2", ["10.244.2.0/24"], String(own)));
    await until("no mismatch", () => !hasMetric("mncni_agent_pod_mtu_mismatch", 'node="n2"'));
    expect(readyz()).toBe("ready\n\n200");
    expect(metric("mncni_agent_warnings")).toBe(0);
  });

  test("its own condition changed by someone else is set back", async () => {
    const me = api.getObject("nodes", "me")!;
    const conditions = (me.status.conditions as Condition[]).map((c) => (c.type === CONDITION ? { ...c, message: "9000" } : c));
    api.put("nodes", { ...me, status: { ...me.status, conditions } });
    await until("the condition set back", () => myPublished() === String(own));
  });

  test("every request the agent made is one its ClusterRole in deploy/mncni.yaml allows", () => {
    expect(api.requests.length).toBeGreaterThan(5);
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });
});
