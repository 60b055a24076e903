// The agent on --source kubernetes when its watches fail: the compiled agent (what the
// DaemonSet runs, with its own ServiceAccount's token and --service-proxy) in a node namespace,
// the fake API server listening in that namespace. The agent runs with --resync 3600, so
// every pass below was started by the source (the resync timer would otherwise start one
// every few seconds and hide a source that does not tell the agent). Checked with the
// kernel's view: `ip -j route`, `nft -j list table` of the policy and Service tables, and
// /readyz.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { join } from "node:path";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { requireBinary } from "../helpers/binary.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentMetric, agentNode, removeAgentNode } from "./agent-process.ts";
import { inNetns, ipJson, netnsPath } from "../helpers/netns.ts";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let agent: Subprocess | undefined;
// Waits below are for conditions, with deadlines generous for a loaded 2-core machine.
setDefaultTimeout(180_000);
const LONG = 90_000;

const node = (name: string, ip: string, cidr: string) => ({
  metadata: { name },
  spec: { podCIDRs: [cidr] },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});
/** A policy on the pod `web` allowing ingress to one named port (its address . protocol . port lands in the kernel's named-port sets). */
const policy = (name: string, port: string) => ({
  metadata: { name, namespace: "shop" },
  spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ ports: [{ port, protocol: "TCP" }] }] },
});
const service = { metadata: { name: "api", namespace: "shop" }, spec: { type: "ClusterIP", clusterIP: "10.96.7.7", clusterIPs: ["10.96.7.7"], ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }] } };
const slice = (addrs: string[]) => ({
  metadata: { name: "api-1", namespace: "shop", labels: { "kubernetes.io/service-name": "api" } },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true } })),
});

type R = { dst: string; gateway?: string };
const routes = () => ipJson<R[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort().join(", ");
const ready = () => agentHttp(ns, "/readyz").endsWith("200");

/** An owned table as nft prints it in JSON, or undefined when it does not exist. */
function table(name: string): { nftables: any[] } | undefined {
  const r = inNetns(ns, ["nft", "-j", "list", "table", "inet", name], { allowFail: true });
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

/** Every element of the policy table's named-port sets (n_*), as "addr . proto . port". */
function namedPorts(): string {
  const sets = (table("mncni-policy")?.nftables ?? []).flatMap((o: { set?: { name: string; elem?: unknown[] } }) => (o.set?.name.startsWith("n_") ? [o.set] : []));
  const text = (e: any) => (e?.concat ? e.concat.map(String).join(" . ") : String(e?.elem?.val?.concat ? e.elem.val.concat.join(" . ") : e));
  return sets.flatMap((s: { elem?: unknown[] }) => (s.elem ?? []).map(text)).sort().join(", ");
}

/** The endpoint addresses the Service table sends 10.96.7.7 to (every pod address it names). */
function serviceEndpoints(): string {
  const text = JSON.stringify(table("mncni-services") ?? {});
  return [...new Set(text.match(/10\.244\.\d+\.\d+/g) ?? [])].sort().join(", ");
}

/** Lists (not watches) of NetworkPolicies the server answered. */
const policyLists = () => api.requests.filter((r) => r.method === "GET" && r.path === "/apis/networking.k8s.io/v1/networkpolicies" && !r.query.watch).length;

/** Failed watch or list attempts of a kind so far (the agent's own count). */
const failures = (kind: string) => agentMetric(ns, "mncni_agent_kube_watch_restarts_total", `kind="${kind}",reason="error"`) || 0;

/** The API server goes away, and stays away until every watched kind has failed to watch again: what a test then changes, the agent cannot have seen. */
async function outage(): Promise<void> {
  const kinds = ["Node", "NetworkPolicy", "EndpointSlice"];
  const before = kinds.map(failures);
  api.stop();
  await until("every watch failed against the stopped server", () => kinds.every((k, i) => failures(k) > before[i]!), LONG);
}

beforeAll(async () => {
  ({ ns, tmp } = agentNode("kw", "10.227.0"));
  api = FakeApiServer.start({ netns: netnsPath(ns), bookmarkIntervalMs: 500 });
  api.put("nodes", node("me", "10.227.0.1", "10.244.1.0/24"));
  api.put("nodes", node("n2", "10.227.0.2", "10.244.2.0/24"));
  api.put("namespaces", { metadata: { name: "shop" } });
  api.put("pods", {
    metadata: { name: "web", namespace: "shop", labels: { app: "web" } },
    spec: { nodeName: "me", containers: [{ name: "c", image: "i", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }, { name: "metrics", containerPort: 9100, protocol: "TCP" }] }] },
    status: { phase: "Running", podIP: "10.244.1.7", podIPs: [{ ip: "10.244.1.7" }] },
  });
  api.put("networkpolicies", policy("web-http", "http"));
  api.put("services", service);
  api.put("endpointslices", slice(["10.244.1.7"]));
  const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
  const argv = agentArgv({ mncni: requireBinary(), tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" }, ["--resync", "3600", "--service-proxy"]);
  agent = spawn(["ip", "netns", "exec", ns, ...argv], { stdout: "ignore", stderr: "ignore" });
  await until("the agent ready", ready, LONG);
  await until("the first pass programmed", () => routes() === "10.244.2.0/24 via 10.227.0.2" && namedPorts() === "10.244.1.7 . tcp . 8080" && serviceEndpoints() === "10.244.1.7", LONG);
});

afterAll(async () => {
  api?.close();
  await removeAgentNode(tmp, agent);
});

describe("--source kubernetes after a watch failure", () => {
  test("a watch failing makes the node not ready at once, a watch resumed makes it ready again, with no object changed", async () => {
    api.stop();
    // Read from the agent's own answer (a curl that failed under load is not "not ready").
    await until("not ready, saying why, while the API server is away", () => {
      const r = agentHttp(ns, "/readyz");
      return r.includes("cannot watch") && !r.endsWith("200");
    }, LONG);
    // The last good state is kept meanwhile.
    expect(routes()).toBe("10.244.2.0/24 via 10.227.0.2");
    api.start();
    await until("ready once the watches are back", ready, LONG);
  });

  test("changes made while the watches were down are replayed on resume and applied: policy, routes, Service endpoints", async () => {
    const before = policyLists();
    await outage();
    api.put("networkpolicies", policy("web-metrics", "metrics"));
    api.remove("networkpolicies", "web-http", "shop");
    api.put("nodes", node("n3", "10.227.0.3", "10.244.3.0/24"));
    api.put("endpointslices", slice(["10.244.1.7", "10.244.2.9"]));
    api.start();
    await until("the new policy's port, the deleted one's gone", () => namedPorts() === "10.244.1.7 . tcp . 9100", LONG);
    await until("n3's route", () => routes() === "10.244.2.0/24 via 10.227.0.2, 10.244.3.0/24 via 10.227.0.3", LONG);
    await until("the Service's new endpoint", () => serviceEndpoints() === "10.244.1.7, 10.244.2.9", LONG);
    await until("ready", ready, LONG);
    expect(policyLists()).toBe(before); // resumed from the last resourceVersion, not listed again
  });

  test("410 Gone after an outage: the relist's difference (adds, changes and deletes) reaches the pass", async () => {
    const before = policyLists();
    await outage();
    api.put("networkpolicies", policy("web-http", "http"));
    api.remove("networkpolicies", "web-metrics", "shop");
    api.remove("nodes", "n3");
    api.put("nodes", node("n2", "10.227.0.22", "10.244.2.0/24"));
    api.put("endpointslices", slice(["10.244.2.9"]));
    // The history the watches would resume from is gone: 410, so every kind is listed again.
    api.compact();
    api.start();
    await until("the policies as listed", () => namedPorts() === "10.244.1.7 . tcp . 8080", LONG);
    await until("routes as listed", () => routes() === "10.244.2.0/24 via 10.227.0.22", LONG);
    await until("the Service's endpoints as listed", () => serviceEndpoints() === "10.244.2.9", LONG);
    await until("ready", ready, LONG);
    expect(policyLists()).toBeGreaterThan(before);
  });
});

describe("RBAC", () => {
  test("every request the agent made above was one deploy/'s role for it allows (the server answers 403 otherwise)", () => {
    expect(api.requests.some((r) => r.user === "system:serviceaccount:kube-system:mncni-agent")).toBe(true);
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });
});
