// Pod MTU compared between nodes (issue 14): the compiled agent with --source kubernetes in a
// node namespace publishes its pod MTU on its Node (annotation mncni.io/pod-mtu, a merge patch
// of the Node), reads the peers' from the watch, and reports a peer with another MTU as a
// warning (/readyz body, the node stays ready), a metric and a Warning Event on its Node,
// changing nothing on the node. Checked with the requests and
// objects of the fake API server, /readyz, /metrics and `ip -j route`.
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
const ANNOTATION = "mncni.io/pod-mtu";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let agent: Subprocess | undefined;
setDefaultTimeout(60_000);

const node = (name: string, ip: string, cidrs: string[], mtu?: string) => ({
  metadata: { name, ...(mtu !== undefined ? { annotations: { [ANNOTATION]: mtu, other: "x" } } : {}) },
  spec: { podCIDRs: cidrs },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});
const curl = (path: string) => agentHttp(ns, path);
const readyz = () => curl("/readyz");
const metric = (name: string, labels = "") => agentMetric(ns, name, labels);
const hasMetric = (name: string, labels: string) => new RegExp(`^${name}\\{${labels}\\} `, "m").test(curl("/metrics"));
const routes = () => ipJson<{ dst: string; gateway?: string }[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort().join(", ");
const mtuEvents = () => api.objects("events").filter((e) => e.reason === "PodMTUMismatch") as unknown as { type: string; message: string; involvedObject: { kind: string; name: string }; source: { component: string } }[];
const myAnnotation = () => api.getObject("nodes", "me")?.metadata?.annotations?.[ANNOTATION] as string | undefined;


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

  test("the agent annotates its Node with the pod MTU of its conflist, once", async () => {
    // The agent's own ServiceAccount: what deploy/ grants it, enforced by the server (403 otherwise).
    const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" })], { stdout: "ignore", stderr: "pipe" });
    await until("ready", () => readyz().endsWith("200"));
    own = metric("mncni_agent_pod_mtu");
    expect(own).toBeGreaterThan(0);
    await until("the annotation", () => myAnnotation() !== undefined);
    expect(myAnnotation()).toBe(String(own));
    const patches = api.requestsTo("PATCH", "/api/v1/nodes/me").filter((r) => !r.path.endsWith("/status"));
    expect(patches.length).toBe(1);
    expect(patches[0]!.contentType).toBe("application/merge-patch+json");
    // Passes every second do not patch again while the Node carries it.
    await Bun.sleep(3000);
    expect(api.requestsTo("PATCH", "/api/v1/nodes/me").filter((r) => !r.path.endsWith("/status")).length).toBe(1);
    expect(metric("mncni_agent_pod_mtu_patches_total")).toBe(1);
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
    expect(myAnnotation()).toBe(String(own));
  });

  test("the peer publishing the same MTU clears it", async () => {
    api.put("nodes", node("n2", "10.225.0.2", ["10.244.2.0/24"], String(own)));
    await until("no mismatch", () => !hasMetric("mncni_agent_pod_mtu_mismatch", 'node="n2"'));
    expect(readyz()).toBe("ready\n\n200");
    expect(metric("mncni_agent_warnings")).toBe(0);
  });

  test("its own annotation changed by someone else is set back", async () => {
    const me = api.getObject("nodes", "me")!;
    api.put("nodes", { ...me, metadata: { ...me.metadata!, annotations: { ...me.metadata!.annotations, [ANNOTATION]: "9000" } } });
    await until("the annotation set back", () => myAnnotation() === String(own));
  });
});
