// A policy kind the API server does not serve at agent start (issue 24, item 7): the compiled
// agent with --source kubernetes:KUBECONFIG in a node namespace, restarted while the fake API
// server answers 404 for ClusterNetworkPolicies (their CRD being reinstalled), or for
// NetworkPolicies (the same path). The kind is
// unknown, not empty: the kernel's policy table stays as it was (nft, in the node namespace),
// /readyz says not ready and why, and once the kind is served again (3 s later) the agent
// picks it up within seconds (backoff, not a fixed minute) and is ready, the table unchanged.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { join } from "node:path";
import { FakeApiServer } from "../helpers/kube-apiserver.ts";
import { requireBinary } from "../helpers/binary.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentNode, removeAgentNode } from "./agent-process.ts";
import { inNetns, netnsPath } from "../helpers/netns.ts";

setDefaultTimeout(60_000);

const POLICIES = {
  // web denied ingress from every namespace (Admin tier).
  clusternetworkpolicies: { kind: "ClusterNetworkPolicy", name: "web-deny", object: { metadata: { name: "web-deny" }, spec: { tier: "Admin", priority: 10, subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: "web" } } } }, ingress: [{ name: "all", action: "Deny", from: [{ namespaces: {} }] }] } } },
  // web isolated for ingress: no rule allows anything.
  networkpolicies: { kind: "NetworkPolicy", name: "web-isolated", object: { metadata: { name: "web-isolated", namespace: "shop" }, spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"] } } },
} as const;

function suite(plural: keyof typeof POLICIES, subnet: string) {
  const { kind, name, object } = POLICIES[plural];
  describe(`a ${kind} resource not served at agent start is unknown, not empty`, () => {
    let ns = "";
    let tmp = "";
    let api: FakeApiServer;
    let kubeconfig = "";
    let agent: Subprocess | undefined;
    let table = "";

    /** The policy table as nft lists it, or "absent". */
    const policyTable = () => {
      const r = inNetns(ns, ["nft", "list", "table", "inet", "mncni-policy"], { allowFail: true });
      return r.code === 0 ? r.stdout : "absent";
    };
    const readyz = () => agentHttp(ns, "/readyz");
    const startAgent = () => {
      agent = spawn(["ip", "netns", "exec", ns, ...agentArgv({ mncni: requireBinary(), tmp, node: "me", source: `kubernetes:${kubeconfig}`, clusterCidr: "10.0.0.0/8" })], { stdout: "ignore", stderr: "ignore" });
    };

    beforeAll(() => {
      ({ ns, tmp } = agentNode(`uk${plural.slice(0, 1)}`, subnet));
      api = FakeApiServer.start({ netns: netnsPath(ns) });
      kubeconfig = api.writeKubeconfig(join(tmp, "kubeconfig"), { as: "mncni-agent" });
      api.put("nodes", { metadata: { name: "me" }, spec: { podCIDRs: ["10.244.1.0/24"] }, status: { addresses: [{ type: "InternalIP", address: `${subnet}.1` }] } });
      api.put("namespaces", { metadata: { name: "shop" } });
      api.put("pods", { metadata: { name: "web", namespace: "shop", labels: { app: "web" } }, spec: { nodeName: "me" }, status: { phase: "Running", podIP: "10.244.1.7", podIPs: [{ ip: "10.244.1.7" }] } });
      api.put(plural, object);
    });

    afterAll(async () => {
      api?.close();
      await removeAgentNode(tmp, agent);
    });

    test(`first run: the ${kind} is programmed`, async () => {
      startAgent();
      await until("ready", () => readyz().endsWith("200"), 30_000);
      await until("the policy table", () => policyTable().includes(name), 20_000);
      table = policyTable();
      agent!.kill("SIGKILL");
      await agent!.exited;
    });

    test(`restarted while ${plural} answer 404: the table stays, not ready saying why; served again 3 s later: picked up in seconds, ready, table unchanged`, async () => {
      expect(table).toContain(name);
      api.hidden.add(plural);
      const t0 = Date.now();
      startAgent();
      await until("the agent serving", () => agentHttp(ns, "/healthz").endsWith("200"), 30_000);
      // Several passes (one a second) while the kind cannot be read.
      await until("three seconds", () => Date.now() - t0 > 3000);
      expect(policyTable()).toBe(table);
      const body = readyz();
      expect(body.endsWith("503")).toBe(true);
      expect(body).toContain(`${kind} cannot be read`);
      expect(body).toContain("404");
      api.hidden.delete(plural);
      const back = Date.now();
      await until("ready again", () => readyz().endsWith("200"), 20_000);
      // Looked for again with backoff from a second, not after a fixed minute.
      expect(Date.now() - back).toBeLessThan(10_000);
      expect(policyTable()).toBe(table);
    }, 90_000);
  });
}

suite("clusternetworkpolicies", "10.227.0");
suite("networkpolicies", "10.227.1");
