// Per-node routing data (issue 23.5): the compiled agent with --source kubernetes in a node
// namespace publishes what its routing backend publishes for the peers (VXLAN: its VNI and
// port) on its own Node's status, as the MncniRouting condition, through a strategic merge
// patch of nodes/status (never a patch of the Node: the agent's RBAC has no nodes patch), reads
// the peers' back from the watch, and reports a peer whose VXLAN settings differ (a tunnel to it
// cannot work) as a warning naming it (the node stays ready for the others). Checked with the fake API server's requests and objects, /readyz
// and the kernel's view (`ip -j link`).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { FakeApiServer } from "../../helpers/kube-apiserver.ts";
import { until } from "../../helpers/until.ts";
import { agentArgv, agentHttp, agentNode, removeAgentNode } from "../agent-process.ts";
import { ipJson, netnsPath } from "../../helpers/netns.ts";

const ROOT = resolve(import.meta.dir, "../../..");
const MNCNI = join(ROOT, "dist/mncni");
const CONDITION = "MncniRouting";

let ns = "";
let tmp = "";
let api: FakeApiServer;
let agent: Subprocess | undefined;
setDefaultTimeout(60_000);

const node = (name: string, ip: string, cidrs: string[], routing?: Record<string, string>) => ({
  metadata: { name },
  spec: { podCIDRs: cidrs },
  status: {
    addresses: [{ type: "InternalIP", address: ip }],
    ...(routing ? { conditions: [{ type: CONDITION, status: "True", reason: "Published", message: JSON.stringify(routing) }] } : {}),
  },
});
const readyz = () => agentHttp(ns, "/readyz");
const published = () => api.getObject("nodes", "me")?.status?.conditions?.find((c: { type: string }) => c.type === CONDITION) as { status: string; message: string } | undefined;

beforeAll(() => {
  if (!existsSync(MNCNI)) throw new Error(`${MNCNI} missing: run make build first`);
  ({ ns, tmp } = agentNode("rpub", "10.226.0"));
  api = FakeApiServer.start({ netns: netnsPath(ns) });
  api.put("nodes", node("me", "10.226.0.1", ["10.244.1.0/24"]));
  api.put("nodes", node("n2", "10.226.0.2", ["10.244.2.0/24"]));
});

afterAll(async () => {
  api?.close();
  await removeAgentNode(tmp, agent);
});

describe("routing data published on the Node's status and read back from the peers (--source kubernetes, --routing vxlan)", () => {
  test("the agent publishes its VXLAN VNI and port as a status condition of its own Node, never patching the Node", async () => {
    // The agent's own ServiceAccount: deploy/'s RBAC enforced (403 otherwise).
    const kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.244.0.0/16" }, ["--routing", "vxlan", "--vxlan-vni", "7"])], { stdout: "ignore", stderr: "pipe" });
    await until("ready", () => readyz().endsWith("200"));
    await until("the condition", () => published() !== undefined);
    expect(published()).toMatchObject({ status: "True", message: JSON.stringify({ vxlan: "vni=7,port=4789" }) });
    const ours = api.requestsTo("PATCH", "/api/v1/nodes/me").filter((r) => JSON.stringify(r.body).includes(CONDITION));
    expect(ours.map((r) => [r.path, r.contentType])).toEqual([["/api/v1/nodes/me/status", "application/strategic-merge-patch+json"]]);
    // Both conditions stay: the patch merges by type.
    expect(api.getObject("nodes", "me")?.status?.conditions?.find((c: { type: string }) => c.type === "NetworkUnavailable")?.status).toBe("False");
    expect(ipJson<{ ifname: string }[]>(ns, ["link", "show", "mncni.vxlan"])[0]?.ifname).toBe("mncni.vxlan");
  });

  test("a peer publishing another VNI is a warning naming it (still ready); publishing the same clears it", async () => {
    api.put("nodes", node("n2", "10.226.0.2", ["10.244.2.0/24"], { vxlan: "vni=8,port=4789" }));
    await until("the warning", () => readyz().includes('VXLAN to node "n2" cannot work'));
    expect(readyz()).toStartWith("ready\nwarnings:\n");
    expect(readyz()).toContain('VXLAN to node "n2" cannot work: it publishes vni=8,port=4789, this node uses vni=7,port=4789');
    expect(readyz()).toEndWith("200");
    api.put("nodes", node("n2", "10.226.0.2", ["10.244.2.0/24"], { vxlan: "vni=7,port=4789", other: "x" }));
    await until("the warning to clear", () => !readyz().includes("warnings:"));
    expect(readyz()).toEndWith("200");
  });

  test("--routing auto: only a tunnelled peer's VXLAN settings matter; a direct one's do not", async () => {
    agent!.kill("SIGKILL");
    await agent!.exited;
    const kubeconfig = join(tmp, "kubeconfig");
    // n2 shares this node's subnet (direct); n3 is elsewhere (tunnel). Both publish VNI 8.
    api.put("nodes", node("n2", "10.226.0.2", ["10.244.2.0/24"], { vxlan: "vni=8,port=4789" }));
    api.put("nodes", node("n3", "10.227.0.3", ["10.244.3.0/24"], { vxlan: "vni=8,port=4789" }));
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.244.0.0/16" }, ["--routing", "auto", "--vxlan-vni", "7"])], { stdout: "ignore", stderr: "pipe" });
    await until("n3 reported", () => readyz().includes('VXLAN to node "n3" cannot work'));
    expect(readyz()).not.toContain('node "n2"');
    expect(published()?.message).toBe(JSON.stringify({ vxlan: "vni=7,port=4789" }));
    api.put("nodes", node("n3", "10.227.0.3", ["10.244.3.0/24"], { vxlan: "vni=7,port=4789" }));
    await until("the n3 warning to clear", () => !readyz().includes('node "n3"'));
    expect(readyz()).toEndWith("200");
    const routes = ipJson<{ dst: string; gateway?: string; dev?: string }[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} ${r.dev}`).sort();
    expect(routes).toEqual(["10.244.2.0/24 eth0", "10.244.3.0/24 mncni.vxlan"]);
  });

  test("--routing host-gw publishes nothing: what VXLAN published is withdrawn", async () => {
    agent!.kill("SIGKILL");
    await agent!.exited;
    api.put("nodes", node("n3", "10.226.0.3", ["10.244.3.0/24"]));
    agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: MNCNI, tmp, node: "me", source: `kubernetes:${join(tmp, "kubeconfig")}`, clusterCidr: "10.244.0.0/16" }, ["--routing", "host-gw"])], { stdout: "ignore", stderr: "pipe" });
    await until("withdrawn", () => published()?.message === "{}");
    await until("ready", () => readyz().endsWith("200"));
  });
});

describe("RBAC", () => {
  test("every request the agent made above was one deploy/'s role for it allows (the server answers 403 otherwise)", () => {
    expect(api.requests.some((r) => r.user === "system:serviceaccount:kube-system:mncni-agent")).toBe(true);
    expect(api.forbiddenRequests().map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });
});
