// Named ports through the Kubernetes source (issue 24, item 3): the compiled agent with
// --source kubernetes:KUBECONFIG (what the DaemonSet runs) in a node namespace, the fake API
// server serving a Pod with named container and init-container ports and NetworkPolicies that
// name them. The kernel's named-port sets (nft -j, in the node namespace) must hold the pod's
// `address . protocol . port`: the Pod the source caches keeps its containers' ports.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { join } from "node:path";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { requireBinary } from "../helpers/binary.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentNode, removeAgentNode } from "./agent-process.ts";
import { inNetns, netnsPath } from "../helpers/netns.ts";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let agent: Subprocess | undefined;
setDefaultTimeout(60_000);

/** Every element of every named-port set (n_*) of the policy table, as "addr . proto . port". */
function namedPortElements(): string[] {
  const r = inNetns(ns, ["nft", "-j", "list", "table", "inet", "mncni-policy"], { allowFail: true });
  if (r.code !== 0) return [];
  const sets = (JSON.parse(r.stdout).nftables as { set?: { name: string; elem?: unknown[] } }[]).flatMap((o) => (o.set?.name.startsWith("n_") ? [o.set] : []));
  const text = (e: any) => (e?.concat ? e.concat.map(String).join(" . ") : String(e?.elem?.val?.concat ? e.elem.val.concat.join(" . ") : e));
  return sets.flatMap((s) => (s.elem ?? []).map(text)).sort();
}

const policy = (name: string, port: string, protocol = "TCP") => ({
  metadata: { name, namespace: "shop" },
  spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ ports: [{ port, protocol }] }] },
});

beforeAll(() => {
  ({ ns, tmp } = agentNode("np", "10.226.0"));
  api = FakeApiServer.start({ netns: netnsPath(ns) });
  api.put("nodes", { metadata: { name: "me" }, spec: { podCIDRs: ["10.244.1.0/24"] }, status: { addresses: [{ type: "InternalIP", address: "10.226.0.1" }] } });
  api.put("namespaces", { metadata: { name: "shop" } });
  api.put("pods", {
    metadata: { name: "web", namespace: "shop", labels: { app: "web" } },
    spec: {
      nodeName: "me",
      initContainers: [{ name: "warm", image: "i", ports: [{ name: "warmup", containerPort: 9090, protocol: "UDP" }] }],
      containers: [{ name: "c", image: "i", env: [{ name: "X", value: "y" }], ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }, { containerPort: 7070 }] }],
    },
    status: { phase: "Running", podIP: "10.244.1.7", podIPs: [{ ip: "10.244.1.7" }] },
  });
  api.put("networkpolicies", policy("web-http", "http"));
  api.put("networkpolicies", policy("web-warmup", "warmup", "UDP"));
});

afterAll(async () => {
  api?.close();
  await removeAgentNode(tmp, agent);
});

describe("named ports with --source kubernetes", () => {
  test("container and init-container named ports resolve into the kernel's named-port sets", async () => {
    // The agent's own ServiceAccount: deploy/'s RBAC enforced (403 otherwise).
    const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: requireBinary(), tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" })], { stdout: "ignore", stderr: "ignore" });
    await until("the agent serving", () => agentHttp(ns, "/healthz").endsWith("200"));
    // The policies are programmed (the table exists) before the sets are looked at.
    await until("the policy table", () => inNetns(ns, ["nft", "list", "table", "inet", "mncni-policy"], { allowFail: true }).code === 0, 20_000);
    await until("the named-port sets filled", () => namedPortElements().length >= 2, 20_000);
    expect(namedPortElements()).toEqual(["10.244.1.7 . tcp . 8080", "10.244.1.7 . udp . 9090"]);
  });

  test("a port renamed on the pod follows through the watch", async () => {
    const web = api.getObject("pods", "web", "shop")!;
    web.spec.containers[0].ports[0] = { name: "http", containerPort: 8081, protocol: "TCP" };
    api.put("pods", web);
    await until("the new port", () => namedPortElements().includes("10.244.1.7 . tcp . 8081"), 20_000);
    expect(namedPortElements()).toEqual(["10.244.1.7 . tcp . 8081", "10.244.1.7 . udp . 9090"]);
  });
});

describe("RBAC", () => {
  test("every request the agent made above was one deploy/'s role for it allows (the server answers 403 otherwise)", () => {
    expect(api.requests.some((r) => r.user === "system:serviceaccount:kube-system:mncni-agent")).toBe(true);
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });
});
