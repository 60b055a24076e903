// `flows` and `lab flows` as an operator reads them, through the compiled binary in a lab
// whose agents enforce a deny policy, with real traffic: a blocked TCP connect (its SYN
// retransmitted) is one row with a count under a header; a node's address is named by the
// node; --pod/--namespace/--verdict filter the text and --json; `lab flows --follow` prints
// flows as they come. Each part failed before: no header, a row per SYN, node addresses,
// filters and `lab flows --follow` refused.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { LabStatus } from "../../src/lab/status.ts";
import type { LabFlowRecord } from "../../src/lab/flows.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "../lab/lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

const POLICIES = [
  // xa may not reach xb; xb is isolated for ingress by a NetworkPolicy allowing only xc, so
  // node1's own traffic to xb is denied too (by that policy's default deny).
  {
    apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name: "no-a-to-b" },
    spec: { tier: "Admin", priority: 10, subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } } }, ingress: [{ name: "no-a", action: "Deny", from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } } }] }] },
  },
  {
    apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "allow-c", namespace: "x" },
    spec: { podSelector: { matchLabels: { pod: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "c" } } }] }] },
  },
];

/** A TCP connect from `from` (a lab place) that gives up after `seconds` (the SYN is sent again after 1 s, 3 s). */
function connect(name: string, from: string, ip: string, port: number, seconds: number): boolean {
  const py = `import socket,sys\ns=socket.socket()\ns.settimeout(${seconds})\ntry:\n  s.connect(("${ip}",${port})); print("ok")\nexcept Exception as e:\n  print("failed", e)`;
  return lab(name, ["exec", from, "--", "python3", "-c", py]).stdout.startsWith("ok");
}

describe.skipIf(WIRING === "static")(`flows: one row per flow, node names, filters, lab --follow${NEEDS_AGENT}`, () => {
  const name = newLabName();
  const dir = mkdtempSync(join(tmpdir(), `${name}-flows-`));
  let xb = "";
  let node1 = "";
  const jsonLines = (out: string) => out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as LabFlowRecord);

  beforeAll(async () => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--mode", "routed", "--wiring", WIRING, "--policy-ports"]);
    for (const [node, pod, label, ns] of [["node1", "xa", "a", "x"], ["node2", "xb", "b", "x"], ["node1", "xc", "c", "x"], ["node1", "ya", "a", "y"]] as const) {
      lab(name, ["pod", "add", node, pod, "--namespace", ns, "--labels", `pod=${label}`]);
    }
    const file = join(dir, "policies.yaml");
    writeFileSync(file, POLICIES.map((o) => stringify(o)).join("---\n"));
    lab(name, ["apply", "-f", file]);
    const st = labJson<LabStatus>(name, ["status"]);
    xb = st.pods.find((p) => p.name === "xb")!.ips.find((a) => !a.includes(":"))!.split("/")[0]!;
    node1 = st.nodes.find((n) => n.name === "node1")!.address;
    // The agents apply a change within their debounce and a pass: wait until xc gets through and xa does not.
    for (let i = 0; i < 20 && !connect(name, "node1/xc", xb, 80, 1); i++) await Bun.sleep(500);
    // The blocked connects: SYNs at 0, 1 and 3 s, each logged by node2's agent.
    expect(connect(name, "node1/xa", xb, 80, 3.5)).toBe(false);
    expect(connect(name, "node1/ya", xb, 81, 1.5)).toBe(false);
    expect(connect(name, "node1", xb, 80, 1.5)).toBe(false);
    const log = join(nodePaths(name, "node2").dir, "flows.log");
    const logged = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
    for (let i = 0; i < 20 && !(logged().includes(`"ip":"${node1}"`) && logged().includes('"pod":"ya"')); i++) await Bun.sleep(250);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a header, and the retransmitted SYNs of one blocked connect as one row with their count", () => {
    const records = jsonLines(lab(name, ["flows", "--json"]).stdout);
    const syns = records.filter((r) => r.src.pod === "xa" && r.dst.pod === "xb" && r.protocol === "TCP");
    expect(syns.length).toBeGreaterThanOrEqual(2); // the kernel's retransmissions, each logged
    expect(new Set(syns.map((r) => r.src.port)).size).toBe(1); // one flow
    const lines = lab(name, ["flows"]).stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NODE\s+FIRST PACKET\s+VERDICT\s+PROTO\s+SOURCE\s+DESTINATION\s+COUNT\s+DECIDED BY$/);
    const rows = lines.filter((l) => l.includes("x/xa:") && l.includes("x/xb:80"));
    expect(rows).toEqual([expect.stringContaining(syns[0]!.time)]);
    expect(rows[0]).toMatch(new RegExp(`^node2\\s+${syns[0]!.time}\\s+DENY\\s+TCP\\s+x/xa:${syns[0]!.src.port}\\s+x/xb:80\\s+${syns.length}\\s+ClusterNetworkPolicy Admin no-a-to-b no-a \\(ingress\\)$`));
  });

  test("a node's address is named by the node, in the lab and on the node itself", () => {
    const fromNode = jsonLines(lab(name, ["flows", "--json"]).stdout).filter((r) => r.src.ip === node1);
    expect(fromNode.length).toBeGreaterThan(0);
    expect(fromNode[0]!.src.node).toBe("node1");
    const text = lab(name, ["flows"]).stdout;
    expect(text).toMatch(new RegExp(`DENY\\s+TCP\\s+node1:${fromNode[0]!.src.port}\\s+x/xb:80`));
    expect(text).not.toContain(`${node1}:`);
    // On node1 itself its own address carries its name (NODE_NAME, else the host name); node2's log copied there.
    const file = join(dir, "node2-flows.log");
    writeFileSync(file, readFileSync(join(nodePaths(name, "node2").dir, "flows.log")));
    const onNode1 = (env: Record<string, string>) =>
      run(["ip", "netns", "exec", `${name}-node1`, "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...LAB_CMD, "flows", "--file", file, "--json"]).stdout;
    const named = jsonLines(onNode1({ NODE_NAME: "k8s-node-one" })).find((r) => r.src.ip === node1)!;
    expect(named.src.node).toBe("k8s-node-one");
  });

  test("--pod, --namespace and --verdict filter the rows and the JSON lines", () => {
    const all = jsonLines(lab(name, ["flows", "--json"]).stdout);
    const json = (...f: string[]) => jsonLines(lab(name, ["flows", "--json", ...f]).stdout);
    const inY = json("--namespace", "y");
    expect(inY.length).toBeGreaterThan(0);
    expect(inY).toEqual(all.filter((r) => r.src.namespace === "y" || r.dst.namespace === "y"));
    const ofXa = json("--pod", "x/xa");
    expect(ofXa.length).toBeGreaterThan(0);
    expect(ofXa).toEqual(all.filter((r) => (r.src.namespace === "x" && r.src.pod === "xa") || (r.dst.namespace === "x" && r.dst.pod === "xa")));
    expect(json("--verdict", "deny")).toEqual(all.filter((r) => r.verdict === "deny"));
    expect(json("--verdict", "allow")).toEqual([]); // accepts are not logged without --policy-log-accepts
    const text = lab(name, ["flows", "--namespace", "y"]).stdout;
    expect(text).toContain("y/ya:");
    expect(text).not.toContain("x/xa:");
    expect(lab(name, ["flows", "--verdict", "allow"]).stdout).toContain("(no logged verdict matches the filters)");
    const bad = lab(name, ["flows", "--pod", "xa"], { allowFail: true });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--pod");
  });

  test("lab flows --follow prints the flows logged while it runs", async () => {
    const proc = Bun.spawn([...LAB_CMD, "lab", "flows", "--name", name, "--follow", "--pod", "y/ya"], { stdout: "pipe", stderr: "pipe" });
    try {
      let out = "";
      const reader = (async () => {
        for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
      })();
      expect(connect(name, "node1/ya", xb, 80, 1.5)).toBe(false);
      for (let i = 0; i < 40 && !out.includes("x/xb:80 "); i++) await Bun.sleep(250);
      expect(out.split("\n")[0]).toContain("FIRST PACKET");
      expect(out).toMatch(/node2\s+\S+\s+DENY\s+TCP\s+y\/ya:\d+\s+x\/xb:80 /);
      expect(out).not.toContain("x/xa");
      void reader;
    } finally {
      proc.kill();
      await proc.exited;
    }
  });
});
