// `mncni ui` beside an agent: run in a lab node's namespace with that node's files, as it runs
// in the agent's pod (the node's loopback, the agent's own --source and --flow-log). Its state has
// every node and pod of the cluster source, this node ready with its routes, the policies with
// the pods they select, and this node's denied flows; explain from this node's pod works; and it
// answers on the node's loopback only.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LabStatus } from "../../src/lab/status.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import type { UiExplainAnswer, UiFlowRow, UiSnapshot } from "../../src/ui/model.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "../lab/lab-cli.ts";
import { printedAddress } from "../helpers/ui-server.ts";

setDefaultTimeout(120_000);

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-to-node2, namespace: default}
spec:
  podSelector: {matchLabels: {node: node2}}
  policyTypes: [Ingress]
`;

describe.skipIf(WIRING === "static")(`mncni ui beside a node's agent${NEEDS_AGENT}`, () => {
  const name = newLabName();
  const work = mkdtempSync(join(tmpdir(), `${name}-uin-`));
  let server: Bun.Subprocess<"ignore", "pipe", "pipe"> | undefined;
  let url = "";
  let st: LabStatus;
  const nodeNs = () => st.nodes.find((n) => n.name === "node2")!.namespace;
  /** A request from inside node2's namespace (the server listens on its loopback). */
  const request = (path: string, body?: unknown): string =>
    run(["ip", "netns", "exec", nodeNs(), process.execPath, "-e", `const r = await fetch(${JSON.stringify(url + path)}${body === undefined ? "" : `, { method: "POST", headers: { "content-type": "application/json" }, body: ${JSON.stringify(JSON.stringify(body))} }`}); process.stdout.write(await r.text());`]).stdout;

  beforeAll(async () => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1"]);
    st = labJson<LabStatus>(name, ["status"]);
    writeFileSync(join(work, "p.yaml"), POLICY);
    lab(name, ["apply", "-f", join(work, "p.yaml")]);
    const [a, b] = [st.pods.find((p) => p.node === "node1")!, st.pods.find((p) => p.node === "node2")!];
    // A denied connection, logged by node2's agent (retried until the agents have the policy).
    for (let i = 0; i < 40; i++) {
      const r = run(["ip", "netns", "exec", a.namespace, ...LAB_CMD, "lab", "_probe", "--json", "--timeout", "500", `${b.ips[0]!.split("/")[0]}:7777`], { allowFail: true });
      if (!(JSON.parse(r.stdout) as { ok: boolean }[])[0]!.ok) break;
    }
    const p = nodePaths(name, "node2");
    // The agent's own --source (the lab's API server with the node's identity, or its manifests directory).
    const agent = readFileSync(`/proc/${st.nodes.find((n) => n.name === "node2")!.agentPid}/cmdline`, "utf8").split("\0");
    const source = agent[agent.indexOf("--source") + 1]!;
    server = Bun.spawn(["ip", "netns", "exec", nodeNs(), ...LAB_CMD, "ui", "--port", "0", "--source", source, "--flow-log", join(p.dir, "flows.log"), "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir, "--log-file", p.cniLog], {
      cwd: work, stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NODE_NAME: "node2" },
    });
    url = await printedAddress(server);
  });

  afterAll(async () => {
    if (server) {
      server.kill("SIGTERM");
      await server.exited;
    }
    downAll();
    rmSync(work, { recursive: true, force: true });
  });

  test("on the node's loopback only", () => {
    expect(new URL(url).hostname).toBe("127.0.0.1");
    // From the root namespace that address is another host's loopback: nothing answers there for it.
    const r = run([process.execPath, "-e", `try { const r = await fetch(${JSON.stringify(url + "api/state")}, { signal: AbortSignal.timeout(1000) }); process.stdout.write(String(r.status)); } catch { process.stdout.write("refused"); }`], { allowFail: true });
    expect(r.stdout).not.toBe("200");
  });

  test("its state: the cluster's nodes and pods, this node ready with its routes, the policy and the denied flow", async () => {
    const s = JSON.parse(request("api/state")) as UiSnapshot;
    let flows = JSON.parse(request("api/flows")) as UiFlowRow[];
    for (let i = 0; i < 20 && !flows.some((f) => f.verdict === "deny"); i++) {
      await Bun.sleep(500);
      flows = JSON.parse(request("api/flows")) as UiFlowRow[];
    }
    expect(s.topology.kind).toBe("node");
    expect(s.topology.title).toBe("node2");
    expect(s.topology.nodes.map((n) => n.name).sort()).toEqual(["node1", "node2"]);
    const me = s.topology.nodes.find((n) => n.name === "node2")!;
    expect(me.ready).toBe(true);
    expect(me.routing).toBe("direct");
    expect(s.topology.nodes.find((n) => n.name === "node1")!.ready).toBeUndefined();
    expect(s.topology.pods.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual(st.pods.map((p) => `${p.k8sNamespace}/${p.k8sName}`).sort());
    const pol = s.policies.find((p) => p.name === "deny-to-node2")!;
    expect(pol.selects).toEqual([`default/${st.pods.find((p) => p.node === "node2")!.k8sName}`]);
    const denied = flows.find((f) => f.verdict === "deny")!;
    expect(denied.node).toBe("node2");
    expect(denied.policy?.name).toBe("deny-to-node2");
    expect(denied.dst.port).toBe(7777);
  });

  test("explain from this node's pod (allowed: the policy judges ingress only); a pod of another node is no source here", () => {
    const b = st.pods.find((p) => p.node === "node2")!;
    const a = st.pods.find((p) => p.node === "node1")!;
    // From node2's own pod back to node1's pod: allowed (the policy only judges ingress of node2's pods).
    const ok = JSON.parse(request("api/explain", { src: `${b.k8sNamespace}/${b.k8sName}`, dst: a.ips[0]!.split("/")[0], proto: "tcp", port: 7777, probe: false })) as UiExplainAnswer;
    if ("error" in ok) throw new Error(ok.error);
    expect(ok.explanation.hops[0]!.place).toBe(`${b.k8sNamespace}/${b.k8sName}`);
    expect(ok.explanation.policy?.expected?.allowed).toBe(true);
    // A pod of another node is no source here: the error says what this node can explain from.
    const other = JSON.parse(request("api/explain", { src: `${a.k8sNamespace}/${a.k8sName}`, dst: "10.0.0.1", proto: "tcp", port: 80, probe: false })) as UiExplainAnswer;
    expect("error" in other && other.error).toContain("not a pod on node node2");
  });
});
