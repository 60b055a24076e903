// explain and inspect with policies, through the compiled binary in a lab whose agents enforce
// them: a ClusterNetworkPolicy denies xa -> xb, a NetworkPolicy allows xc -> xb. explain must
// name the deciding policy for the dropped packet and for the allowed one, both from the
// evaluator and from the probe's nftables trace (the rule that decided, in inet mncni-policy),
// with no mismatch between them; inspect must list the policies selecting xb.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import type { Attachment } from "../../src/obs/attachments.ts";
import type { Explanation } from "../../src/obs/explain.ts";
import type { LabStatus } from "../../src/lab/status.ts";
import type { FlowRecord } from "../../src/obs/flows.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { run } from "../helpers/netns.ts";
import { LAB_CMD, NEEDS_AGENT, WIRING, downAll, lab, labJson, newLabName } from "../lab/lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

const POLICIES = [
  {
    apiVersion: "policy.networking.k8s.io/v1alpha2", kind: "ClusterNetworkPolicy", metadata: { name: "no-a-to-b" },
    spec: { tier: "Admin", priority: 10, subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } } }, ingress: [{ name: "no-a", action: "Deny", from: [{ pods: { namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } } }] }] },
  },
  {
    apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "allow-c", namespace: "x" },
    spec: { podSelector: { matchLabels: { pod: "b" } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "c" } } }] }] },
  },
];

// The static wiring runs no agent: nothing enforces policies there.
describe.skipIf(WIRING === "static")(`explain and inspect name policies (routed mode)${NEEDS_AGENT}`, () => {
  const name = newLabName();
  const dir = mkdtempSync(join(tmpdir(), `${name}-pol-`));
  const explain = (src: string, dst: string) => {
    const r = lab(name, ["explain", src, dst, "--json", "--proto", "tcp", "--port", "80"], { allowFail: true });
    return { code: r.code, ex: JSON.parse(r.stdout) as Explanation };
  };

  beforeAll(async () => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--mode", "routed", "--wiring", WIRING, "--policy-ports"]);
    for (const [node, pod, label] of [["node1", "xa", "a"], ["node2", "xb", "b"], ["node1", "xc", "c"], ["node1", "xd", "d"]] as const) {
      lab(name, ["pod", "add", node, pod, "--namespace", "x", "--labels", `pod=${label}`]);
    }
    const file = join(dir, "policies.yaml");
    writeFileSync(file, POLICIES.map((o) => stringify(o)).join("---\n"));
    lab(name, ["apply", "-f", file]);
    // The agents apply a change within their debounce and a pass: wait until the drop is in place.
    for (let i = 0; i < 20 && explain("node1/xa", "node2/xb").ex.outcome !== "dropped"; i++) await Bun.sleep(500);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("explain names the deciding policy of a dropped packet, confirmed by the probe", () => {
    const { code, ex } = explain("node1/xa", "node2/xb");
    expect(ex.outcome).toBe("dropped");
    expect(ex.policy!.expected).toMatchObject({ allowed: false, deniedIn: "ingress", by: "ClusterNetworkPolicy no-a-to-b rule no-a (tier Admin, Deny)" });
    const hop = ex.hops.at(-1)!;
    expect(hop.place).toBe("node2");
    expect(hop.dropped).toContain("no-a-to-b");
    // The kernel's account: the probe was dropped in node2 by the rule compiled from that policy.
    expect(ex.policy!.traced).toMatchObject({ place: "node2", verdict: "dropped", by: "ClusterNetworkPolicy no-a-to-b rule no-a (tier Admin)" });
    const at = ex.probe!.places.find((p) => p.place === "node2")!;
    expect(at.verdict).toBe("dropped");
    expect(at.droppedBy).toContain("mncni-policy");
    expect(ex.probe!.mismatches).toEqual([]);
    // Computed and traced agree: 0, whatever the verdict (1 is for a mismatch, 2 for could not run).
    expect(code).toBe(0);
  });

  test("explain says why no rule allowed a denied flow (each rule's miss), the decisive lines first, no made-up rule name", () => {
    // xd (pod=d): the Admin rule no-a wants pod=a, allow-c's only rule wants pod=c; allow-c isolates xb.
    const { code, ex } = explain("node1/xd", "node2/xb");
    expect(ex.outcome).toBe("dropped");
    const ingress = ex.policy!.expected!.why!.ingress;
    expect(ingress.allowed).toBe(false);
    expect(ingress.why.decided).toBe("isolated");
    const byName = new Map(ingress.why.policies.map((p) => [p.name, p.rules]));
    expect(byName.get("no-a-to-b")).toEqual([{ rule: "no-a", at: "ingress[0]", action: "Deny", matched: false, peers: [{ at: "from[0]", miss: expect.objectContaining({ kind: "podSelector", pod: "x/xd", unmet: [{ requirement: "pod=a", key: "pod", value: "d" }] }) }] }]);
    expect(byName.get("allow-c")).toEqual([{ rule: "ingress[0]", at: "ingress[0]", matched: false, peers: [{ at: "from[0]", miss: expect.objectContaining({ kind: "podSelector", unmet: [{ requirement: "pod=c", key: "pod", value: "d" }] }) }] }]);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
    const text = lab(name, ["explain", "node1/xd", "node2/xb", "--proto", "tcp", "--port", "80"], { allowFail: true }).stdout.split("\n");
    expect(text.join("\n")).not.toContain("rule default-deny");
    // The decisive lines come before the hop-by-hop path and the trace.
    const whyAt = text.findIndex((l) => l.includes("ingress[0].from[0]: podSelector pod=c does not select the source x/xd (it has pod=d"));
    const headAt = text.findIndex((l) => l.includes("no rule allows it. NetworkPolicy x/allow-c selects x/xb for ingress"));
    const pathAt = text.indexOf("path (computed)");
    expect(text[0]).toContain("dropped in node2");
    expect(headAt).toBeGreaterThan(0);
    expect(whyAt).toBeGreaterThan(headAt);
    expect(pathAt).toBeGreaterThan(whyAt);
    expect(text.slice(0, pathAt).some((l) => l.includes("computed and traced paths agree"))).toBe(true);
  });

  test("explain exits 2 when it cannot run, and follows an address outside the lab as far as the lab routes it", () => {
    expect(lab(name, ["explain", "node1/nope", "node2/xb"], { allowFail: true }).code).toBe(2);
    const out = lab(name, ["explain", "node1/xa", "198.51.100.7", "--json"], { allowFail: true });
    const ex = JSON.parse(out.stdout) as Explanation;
    // The router has no route to it: the path ends there, as the probe's trace does.
    expect(ex.hops.map((h) => h.place)).toEqual(["node1/xa", "node1", "rtr"]);
    expect(ex.hops.at(-1)!.error).toContain("ENETUNREACH");
    expect(ex.probe!.mismatches).toEqual([]);
    expect(out.code).toBe(0);
    const ext = lab(name, ["explain", "node1/xa", "ext", "--json"], { allowFail: true });
    expect((JSON.parse(ext.stdout) as Explanation).outcome).toBe("delivered");
    expect(ext.code).toBe(0);
  });

  test("explain names the policy that allows a packet, confirmed by the probe", () => {
    const { code, ex } = explain("node1/xc", "node2/xb");
    expect(ex.outcome).toBe("delivered");
    expect(ex.policy!.expected).toMatchObject({ allowed: true, by: "NetworkPolicy x/allow-c rule ingress[0]" });
    // Only the destination's node judges (ingress); no policy selects xc for egress.
    expect(ex.hops.filter((h) => h.policy).map((h) => [h.place, h.policy])).toEqual([["node2", "ingress allowed by NetworkPolicy x/allow-c rule ingress[0]"]]);
    expect(ex.policy!.traced).toMatchObject({ place: "node2", verdict: "allowed", by: "NetworkPolicy x/allow-c rule ingress[0]" });
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("flows: --json carries the facts of the text, for the lab and on a node", async () => {
    // The denied probes of the tests above, logged by node2's agent (asynchronously: wait for one).
    const file = join(nodePaths(name, "node2").dir, "flows.log");
    for (let i = 0; i < 20 && !(existsSync(file) && readFileSync(file, "utf8").includes('"deny"')); i++) await Bun.sleep(250);
    const records = lab(name, ["flows", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l) as FlowRecord & { node: string });
    const text = lab(name, ["flows"]).stdout;
    const denied = records.filter((r) => r.verdict === "deny" && r.dst.pod === "xb" && r.src.pod === "xa");
    expect(denied.length).toBeGreaterThan(0);
    expect(denied[0]!.policy).toMatchObject({ kind: "ClusterNetworkPolicy", name: "no-a-to-b" });
    const end = (e: FlowRecord["src"]) => `${e.namespace}/${e.pod}${e.port !== undefined ? `:${e.port}` : ""}`;
    // Repeated packets of one flow are one row, named by its first packet's time.
    const firsts = denied.filter((r, i) => denied.findIndex((o) => o.src.port === r.src.port && o.dst.port === r.dst.port) === i);
    for (const r of firsts) expect(text).toMatch(new RegExp(`${r.node}\\s+${r.time}\\s+DENY\\s+${r.protocol}\\s+${end(r.src)}\\s+${end(r.dst)}\\s+\\d+\\s+ClusterNetworkPolicy Admin no-a-to-b`));
    // On the node: `mncni flows --file` prints the same records (without the node column).
    const onNode = (...args: string[]) => run([...LAB_CMD, "flows", "--file", file, ...args]).stdout;
    const nodeRecords = onNode("--json").trim().split("\n").map((l) => JSON.parse(l) as FlowRecord);
    expect(nodeRecords).toEqual(records.filter((r) => r.node === "node2").map(({ node: _, ...r }) => r));
    const nodeText = onNode();
    for (const r of firsts) expect(nodeText).toMatch(new RegExp(`^${r.time}\\s+DENY\\s+${r.protocol}\\s+${end(r.src)}\\s+${end(r.dst)}\\s+\\d+ `, "m"));
  });

  test("flows on a node names other nodes by their Node objects (--source), not by address", async () => {
    // node1 -> xb: no pod is the source, allow-c isolates xb: denied, and logged by node2.
    const st = labJson<LabStatus>(name, ["status"]);
    const node1 = st.nodes.find((n) => n.name === "node1")!.address;
    expect(explain("node1", "node2/xb").ex.outcome).toBe("dropped");
    const file = join(nodePaths(name, "node2").dir, "flows.log");
    for (let i = 0; i < 20 && !(existsSync(file) && readFileSync(file, "utf8").includes(`"ip":"${node1}"`)); i++) await Bun.sleep(250);
    // The Node objects the source knows (independent of the lab's own: written here).
    const nodes = join(dir, "nodes");
    mkdirSync(nodes, { recursive: true });
    for (const n of st.nodes) writeFileSync(join(nodes, `${n.name}.yaml`), stringify({ apiVersion: "v1", kind: "Node", metadata: { name: n.name }, status: { addresses: [{ type: "InternalIP", address: n.address }] } }));
    const onNode = (...args: string[]) => run([...LAB_CMD, "flows", "--file", file, "--verdict", "deny", ...args]);
    const records = onNode("--json", "--source", `dir:${nodes}`).stdout.trim().split("\n").map((l) => JSON.parse(l) as FlowRecord & { src: { node?: string } });
    const fromNode1 = records.filter((r) => r.src.ip === node1);
    expect(fromNode1.length).toBeGreaterThan(0);
    expect(fromNode1.every((r) => r.src.node === "node1")).toBe(true);
    expect(onNode("--source", `dir:${nodes}`).stdout).toMatch(/DENY\s+TCP\s+node1:\d+\s+x\/xb:80\s/);
    // Without a source (and not in a pod): by address, as before.
    expect(onNode().stdout).toContain(`${node1}:`);
    // In the agent's pod nothing is passed: the service account reaches the API server. Played
    // here with the lab's API server (its admin token and CA as a service account's files).
    const kc = parse(readFileSync(lab(name, ["kubeconfig"]).stdout.trim(), "utf8")) as { clusters: { cluster: { server: string; "certificate-authority": string } }[]; users: { user: { token: string } }[] };
    const url = new URL(kc.clusters[0]!.cluster.server);
    const sa = join(dir, "serviceaccount");
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, "token"), kc.users[0]!.user.token);
    writeFileSync(join(sa, "ca.crt"), readFileSync(kc.clusters[0]!.cluster["certificate-authority"]));
    writeFileSync(join(sa, "namespace"), "kube-system");
    const env = { ...(process.env as Record<string, string>), KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port, MNCNI_SERVICE_ACCOUNT_DIR: sa };
    const inPod = run([...LAB_CMD, "flows", "--file", file, "--verdict", "deny", "--json"], { env }).stdout.trim().split("\n").map((l) => JSON.parse(l) as FlowRecord & { src: { node?: string } });
    expect(inPod.filter((r) => r.src.ip === node1).every((r) => r.src.node === "node1")).toBe(true);
    expect(inPod.some((r) => r.src.ip === node1)).toBe(true);
  });

  test("explain says a held pod is held (not yet programmed by the agent), not a mismatch", () => {
    // A held pod, as the plugin leaves one: node2's agent paused (it would release the hold on
    // its next pass), xb's address put into the hold set as the plugin's ADD does.
    const st = labJson<LabStatus>(name, ["status"]);
    const pid = st.nodes.find((n) => n.name === "node2")!.agentPid!;
    const ip = st.pods.find((p) => p.name === "xb")!.ips.find((a) => !a.includes(":"))!.split("/")[0]!;
    const nft = (...args: string[]) => run(["ip", "netns", "exec", `${name}-node2`, "nft", ...args]);
    process.kill(pid, "SIGSTOP");
    try {
      nft("add", "element", "inet", "mncni-hold", "held_4", `{ ${ip} }`);
      const { code, ex } = explain("node1/xc", "node2/xb");
      const hop = ex.hops.at(-1)!;
      expect(hop.place).toBe("node2");
      expect(hop.held).toEqual({ ip, pod: "node2/xb" });
      expect(hop.dropped).toContain("not yet programmed by the agent");
      // The probe was dropped by the hold table in node2: computed and traced agree.
      expect(ex.probe!.places.find((p) => p.place === "node2")!.droppedBy).toContain("mncni-hold");
      expect(ex.probe!.mismatches).toEqual([]);
      expect(code).toBe(0);
      const text = lab(name, ["explain", "node1/xc", "node2/xb", "--proto", "tcp", "--port", "80"], { allowFail: true }).stdout;
      expect(text).toContain(`computed: held (node2/xb is not yet programmed by the agent`);
      expect(text).toContain("computed and traced paths agree");
      expect(text).not.toContain("MISMATCH");
    } finally {
      nft("delete", "element", "inet", "mncni-hold", "held_4", `{ ${ip} }`);
      process.kill(pid, "SIGCONT");
    }
  });

  test("inspect lists the policies selecting a pod, per direction", () => {
    const b = JSON.parse(lab(name, ["inspect", "node2/xb", "--json"]).stdout) as Attachment;
    expect(b.policies).toEqual([
      { direction: "ingress", kind: "ClusterNetworkPolicy", name: "no-a-to-b", tier: "Admin", priority: 10 },
      { direction: "ingress", kind: "NetworkPolicy", name: "x/allow-c", tier: "NetworkPolicy" },
    ]);
    const a = JSON.parse(lab(name, ["inspect", "node1/xa", "--json"]).stdout) as Attachment;
    expect(a.policies).toEqual([]);
    const text = lab(name, ["inspect", "node2/xb"]).stdout;
    expect(text).toContain("ingress ClusterNetworkPolicy no-a-to-b (Admin priority 10)");
  });
});
