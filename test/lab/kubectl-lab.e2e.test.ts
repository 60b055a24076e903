// A lab driven with kubectl only (/usr/bin/kubectl, the admin kubeconfig `lab kubeconfig`
// prints): a NetworkPolicy with a named port applied, a pod labelled, the verdict followed in
// real TCP connections between the pods' namespaces, the policy deleted. The named port
// resolves through the API (the Pod's container ports as the agents read them), and the lab's
// own views (status, check) follow what kubectl changed.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { LabStatus } from "../../src/lab/status.ts";
import type { PolicyReport } from "../../src/lab/policy-check.ts";
import { LAB_ROOT } from "../../src/lab/topology.ts";
import { writeComponentKubeconfig } from "../../src/lab/apiserver/lab-server.ts";
import { run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { downAll, lab, labJson, newLabName } from "./lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-trusted, namespace: default}
spec:
  podSelector: {matchLabels: {role: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {trusted: "yes"}}}]
    ports: [{port: http, protocol: TCP}]
`;

describe.skipIf(!Bun.which("kubectl"))("a lab driven with kubectl", () => {
  const name = newLabName();
  let kubeconfig = "";
  let st: LabStatus;
  const kubectl = (args: string[], allowFail = false) => run(["kubectl", "--kubeconfig", kubeconfig, ...args], { allowFail });
  const pod = (n: string) => st.pods.find((p) => p.name === n)!;
  /** A real TCP connection from the client pod's namespace to the web pod's port: "open" or "closed". */
  const tcp = (port: number) =>
    run(["ip", "netns", "exec", pod("client").namespace, "python3", "-c",
      `import socket,sys\ns=socket.socket();s.settimeout(0.5)\ntry:\n s.connect(("${pod("web").ips[0]}",${port}));print("open")\nexcept Exception:\n print("closed")`]).stdout.trim();

  beforeAll(() => {
    // Every pod serves 80 and 81 (--policy-ports); web names its 80 "http".
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--policy-ports"]);
    lab(name, ["pod", "add", "node1", "client"]);
    lab(name, ["pod", "add", "node2", "web", "--labels", "role=web", "--ports", "http=80/TCP"]);
    kubeconfig = lab(name, ["kubeconfig"]).stdout.trim();
    st = labJson<LabStatus>(name, ["status"]);
  });

  test("kubeconfig: kubectl sees the lab's nodes (Ready, with the controller's pod CIDRs) and pods (Running, their IPs)", () => {
    expect(kubeconfig).toBe(`${LAB_ROOT}/${name}/apiserver/admin.kubeconfig`);
    const nodes = JSON.parse(kubectl(["get", "nodes", "-o", "json"]).stdout).items;
    expect(nodes.map((n: any) => [n.metadata.name, n.spec.podCIDRs, n.status.conditions.find((c: any) => c.type === "Ready")?.status])).toEqual(
      st.nodes.map((n) => [n.name, n.podCIDRs, "True"]),
    );
    const wide = kubectl(["get", "pods", "-o", "wide"]).stdout;
    expect(wide).toMatch(new RegExp(`node2-web\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${pod("web").ips[0]!.replaceAll(".", "\\.")}\\s+node2`));
    expect(tcp(80)).toBe("open");
    expect(tcp(81)).toBe("open");
  });

  test("RBAC in the lab: a node's agent token cannot change Nodes (403), a token without a role cannot list pods (403)", () => {
    // The agent's kubeconfig names the lab address: kubectl runs where the agent does, in its node.
    const agent = `${LAB_ROOT}/${name}/apiserver/agent-node1.kubeconfig`;
    const inNode = run(["ip", "netns", "exec", `${name}-node1`, "kubectl", "--kubeconfig", agent, "label", "node", "node1", "x=y"], { allowFail: true });
    expect(inNode.code).toBe(1);
    expect(inNode.stderr).toContain('nodes "node1" is forbidden: User "system:serviceaccount:kube-system:mncni-agent" cannot patch resource "nodes"');
    // ...while it reads what it needs.
    expect(run(["ip", "netns", "exec", `${name}-node1`, "kubectl", "--kubeconfig", agent, "get", "pods", "-A", "-o", "name"]).stdout).toContain("pod/node2-web");
    const nobody = writeComponentKubeconfig(name, "nobody", "127.0.0.1");
    const r = run(["kubectl", "--kubeconfig", nobody, "get", "pods"], { allowFail: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pods is forbidden: User "lab:nobody" cannot list resource "pods"');
  });

  test("kubectl apply: the named-port policy denies the untrusted client both ports", async () => {
    const file = `${LAB_ROOT}/${name}/policy.yaml`;
    writeFileSync(file, POLICY);
    expect(kubectl(["apply", "-f", file]).stdout.trim()).toBe("networkpolicy.networking.k8s.io/web-from-trusted created");
    await until("port 80 closed to the client", () => tcp(80) === "closed", 15_000);
    expect(tcp(81)).toBe("closed");
  });

  test("kubectl label: the trusted client reaches the named port (80) and only it", async () => {
    expect(kubectl(["label", "pod", "node1-client", "trusted=yes"]).stdout.trim()).toBe("pod/node1-client labeled");
    await until("port 80 open to the trusted client", () => tcp(80) === "open", 15_000);
    expect(tcp(81)).toBe("closed");
    // The lab's own views read the API: the label kubectl set, and the truth table agrees with the traffic.
    expect(labJson<LabStatus>(name, ["status"]).pods.find((p) => p.name === "client")!.labels.trusted).toBe("yes");
    const report = labJson<PolicyReport>(name, ["check"], { allowFail: true });
    expect(report.mismatches).toEqual([]);
    expect(report.cells.find((c) => c.src === "default/node1-client" && c.dst === "default/node2-web" && c.port === 80 && c.protocol === "TCP")!.expected).toBe("allowed");
    expect(report.cells.find((c) => c.src === "default/node1-client" && c.dst === "default/node2-web" && c.port === 81 && c.protocol === "TCP")!.expected).toBe("denied");
  });

  test("lab apply/delete as kubectl: repeated -f, a directory, one line per object, unchanged/configured, exit 1 on a miss; kubectl sees them", () => {
    const dir = `${LAB_ROOT}/${name}/objs`;
    mkdirSync(dir, { recursive: true });
    const ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {team: a}}\n";
    const np = (n: string, ports: string) => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${n}, namespace: team-a}\nspec:\n  podSelector: {}\n  ingress: [{ports: [${ports}]}]\n`;
    writeFileSync(`${dir}/ns.yaml`, ns);
    mkdirSync(`${dir}/policies`, { recursive: true });
    writeFileSync(`${dir}/policies/a.yaml`, np("a", "{port: 80}"));
    writeFileSync(`${dir}/policies/b.json`, JSON.stringify(parseYaml(np("b", "{port: http}"))));
    const apply = () => lab(name, ["apply", "-f", `${dir}/ns.yaml`, "-f", `${dir}/policies`]).stdout.trim().split("\n");
    expect(apply()).toEqual(["namespace/team-a created", "networkpolicy.networking.k8s.io/a created", "networkpolicy.networking.k8s.io/b created"]);
    expect(apply()).toEqual(["namespace/team-a unchanged", "networkpolicy.networking.k8s.io/a unchanged", "networkpolicy.networking.k8s.io/b unchanged"]);
    writeFileSync(`${dir}/policies/a.yaml`, np("a", "{port: 81}"));
    expect(apply()[1]).toBe("networkpolicy.networking.k8s.io/a configured");
    expect(JSON.parse(kubectl(["get", "networkpolicy", "a", "-n", "team-a", "-o", "json"]).stdout).spec.ingress[0].ports[0].port).toBe(81);
    expect(kubectl(["get", "namespace", "team-a", "-o", "jsonpath={.metadata.labels.team}"]).stdout).toBe("a");
    const del = lab(name, ["delete", "-f", `${dir}/policies`]);
    expect(del.stdout.trim().split("\n")).toEqual(['networkpolicy.networking.k8s.io "a" deleted', 'networkpolicy.networking.k8s.io "b" deleted']);
    const miss = lab(name, ["delete", "-f", `${dir}/policies`], { allowFail: true });
    expect(miss.code).toBe(1);
    expect(miss.stderr).toContain('Error from server (NotFound): networkpolicies.networking.k8s.io "a" not found');
    expect(kubectl(["get", "networkpolicies", "-n", "team-a", "-o", "name"]).stdout.trim()).toBe("");
  });

  test("kubectl delete: the policy goes, both ports open again", async () => {
    expect(kubectl(["delete", "networkpolicy", "web-from-trusted"]).stdout.trim()).toBe('networkpolicy.networking.k8s.io "web-from-trusted" deleted');
    await until("port 81 open again", () => tcp(81) === "open", 15_000);
    expect(tcp(80)).toBe("open");
    // And a second delete is kubectl's NotFound, exit 1.
    const again = kubectl(["delete", "networkpolicy", "web-from-trusted"], true);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("NotFound");
  });
});
