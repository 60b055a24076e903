// What the agent refuses (issue 18, defects 2, 8, 10), run for real: the compiled agent in a
// node namespace whose underlay is 10.224.0.0/24 (peers on-link), a foreign `ip filter`
// forward chain with policy drop, Node manifests in a directory. Checked with `ip -j`,
// `nft -j`, the conflist it writes, /readyz and /metrics.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { inNetns, ipJson, run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { agentArgv, agentHttp, agentMetric, agentNode, removeAgentNode } from "./agent-process.ts";

const ROOT = resolve(import.meta.dir, "../..");
const MNCNI = join(ROOT, "dist/mncni");
const CLUSTER = "10.0.0.0/8";
const ME = { name: "me", ip: "10.224.0.1", cidrs: ["10.244.1.0/24"] };
const N2 = { name: "n2", ip: "10.224.0.2", cidrs: ["10.244.2.0/24"] };

let ns = "";
let tmp = "";
let manifests = "";
let agent: Subprocess | undefined;
setDefaultTimeout(30_000);

function writeNode(name: string, ip: string, cidrs: string[], created?: string): void {
  const file = join(manifests, `node-${name}.yaml`);
  writeFileSync(`${file}.tmp`, stringify({
    apiVersion: "v1", kind: "Node", metadata: { name, ...(created ? { creationTimestamp: created } : {}) },
    spec: { podCIDRs: cidrs }, status: { addresses: [{ type: "InternalIP", address: ip }] },
  }));
  renameSync(`${file}.tmp`, file);
}
const removeNode = (name: string) => rmSync(join(manifests, `node-${name}.yaml`), { force: true });

const args = (source: string, extra: string[] = []) => agentArgv({ mncni: MNCNI, tmp, node: ME.name, source, clusterCidr: CLUSTER }, extra);
type R = { dst: string; gateway?: string };
const routes = () => ipJson<R[]>(ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort();
const curl = (path: string) => agentHttp(ns, path);
const metric = (name: string) => agentMetric(ns, name);
const ruleset = () => inNetns(ns, ["nft", "-s", "list", "ruleset"]).stdout;
const conflistRanges = () => JSON.parse(readFileSync(join(tmp, "conf/10-mncni.conflist"), "utf8")).plugins[0].ipam.ranges;
const log = () => readFileSync(join(tmp, "agent.log"), "utf8");


/** Back to two good Nodes, converged and ready. */
async function baseline(): Promise<void> {
  for (const f of ["n3", "n4", "aaa"]) removeNode(f);
  writeNode(ME.name, ME.ip, ME.cidrs);
  writeNode(N2.name, N2.ip, N2.cidrs);
  await until("the baseline to converge", () => curl("/readyz").endsWith("200") && routes().join() === "10.244.2.0/24 via 10.224.0.2");
}

beforeAll(async () => {
  if (!existsSync(MNCNI)) throw new Error(`${MNCNI} missing: run make build first`);
  ({ ns, tmp } = agentNode("rf", "10.224.0"));
  manifests = join(tmp, "manifests");
  mkdirSync(manifests);
  run(["ip", "-n", ns, "route", "add", "default", "via", "10.224.0.254"]);
  // The host firewall the agent must not open up: a foreign forward chain with policy drop.
  inNetns(ns, ["nft", "add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }"]);
  writeNode(ME.name, ME.ip, ME.cidrs);
  writeNode(N2.name, N2.ip, N2.cidrs);
});

afterAll(async () => {
  await removeAgentNode(tmp, agent);
});

describe("an unusable source at start-up is a refusal to start", () => {
  test("--once with a missing directory exits non-zero and removes nothing", () => {
    expect(inNetns(ns, args(`dir:${manifests}`, ["--once", "--metrics-addr", "off"]), { allowFail: true }).code).toBe(0);
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
    const r = inNetns(ns, args(`dir:${join(tmp, "does-not-exist")}`, ["--once", "--metrics-addr", "off"]), { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(log()).toContain(`cannot start agent: cannot read manifests directory \\"${join(tmp, "does-not-exist")}\\"`);
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
  });

  test("a long-running agent with a missing directory exits non-zero and removes nothing", async () => {
    const p = spawn(["ip", "netns", "exec", ns, ...args(`dir:${join(tmp, "does-not-exist")}`, ["--metrics-addr", "off"])], { stdout: "ignore", stderr: "ignore" });
    const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => "still running")]);
    if (code === "still running") p.kill("SIGKILL");
    expect(code).not.toBe(0);
    expect(code).not.toBe("still running");
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
  });
});

describe("routing backends own their routes by their own rule", () => {
  test("switching to --routing none removes host-gw's routes only; a device route with protocol 77 stays", () => {
    const once = (routing: string) => inNetns(ns, args(`dir:${manifests}`, ["--once", "--metrics-addr", "off", "--routing", routing]), { allowFail: true });
    expect(once("host-gw").code).toBe(0);
    // What a device backend (VXLAN) or the plugin's routed mode has: protocol 77, no gateway.
    run(["ip", "-n", ns, "route", "add", "10.244.50.0/24", "dev", "eth0", "proto", "77"]);
    try {
      once("none");
      expect(routes()).toEqual(["10.244.50.0/24 via undefined"]);
      expect(once("host-gw").code).toBe(0);
      expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2", "10.244.50.0/24 via undefined"]);
    } finally {
      run(["ip", "-n", ns, "route", "del", "10.244.50.0/24", "dev", "eth0", "proto", "77"]);
    }
  });
});

describe("the running agent refuses pod CIDRs it must not trust", () => {
  const startAgent = () => {
    agent = spawn(["ip", "netns", "exec", ns, ...args(`dir:${manifests}`, ["--metrics-addr", "127.0.0.1:9817"])], { stdout: "ignore", stderr: "pipe" });
  };
  beforeAll(async () => {
    startAgent();
    await baseline();
  });

  test("0.0.0.0/0 (outside the cluster CIDR): no route, masquerade and the foreign chain untouched, reported", async () => {
    await baseline();
    const before = ruleset();
    writeNode("n3", "10.224.0.3", ["0.0.0.0/0"]);
    await until("the problem to be reported", () => metric("mncni_agent_problems") >= 1);
    expect(curl("/readyz")).toEndWith("503");
    expect(ruleset()).toBe(before);
    expect(ruleset()).not.toContain("0.0.0.0/0");
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
    expect(log()).toContain('pod CIDR \\"0.0.0.0/0\\" of node \\"n3\\"');
    removeNode("n3");
    await until("ready again", () => curl("/readyz").endsWith("200") && metric("mncni_agent_problems") === 0);
  });

  test("the underlay's own subnet as a pod CIDR is refused: the node keeps its route to the router", async () => {
    await baseline();
    writeNode("n3", "10.224.0.3", ["10.224.0.0/24"]);
    await until("the problem to be reported", () => metric("mncni_agent_problems") >= 1);
    expect(curl("/readyz")).toEndWith("503");
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
    expect(ipJson<R[]>(ns, ["route", "get", "10.224.0.254"])[0]!.gateway).toBeUndefined();
    expect(log()).toContain("overlaps the connected subnet");
  });

  test("two IPv4 pod CIDRs on one Node: only the first is used, the rest reported", async () => {
    await baseline();
    writeNode("n4", "10.224.0.4", ["10.244.4.0/24", "10.244.5.0/24"]);
    await until("the first CIDR routed and the second reported", () => routes().includes("10.244.4.0/24 via 10.224.0.4") && metric("mncni_agent_problems") >= 1);
    expect(routes()).not.toContain("10.244.5.0/24 via 10.224.0.4");
    expect(curl("/readyz")).toEndWith("503");
  });

  test("a pod CIDR changed in place is refused, for this node and for a peer", async () => {
    await baseline();
    writeNode(ME.name, ME.ip, ["10.244.9.0/24"]);
    writeNode(N2.name, N2.ip, ["10.244.8.0/24"]);
    await until("both changes to be reported", () => metric("mncni_agent_problems") >= 2);
    expect(curl("/readyz")).toEndWith("503");
    expect(conflistRanges()).toEqual([[{ subnet: "10.244.1.0/24" }]]);
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
    expect(ruleset()).not.toContain("10.244.9.0/24");
    expect(log()).toContain("changed in place");
  });

  test("an established Node's route is never displaced by an overlapping newcomer, whatever the names", async () => {
    await baseline();
    writeNode("aaa", "10.224.0.5", ["10.244.2.0/25"]);
    writeNode("n3", "10.224.0.3", ["10.244.1.128/25"]);
    await until("both newcomers to be reported", () => metric("mncni_agent_problems") >= 2);
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
    expect(conflistRanges()).toEqual([[{ subnet: "10.244.1.0/24" }]]);
    expect(log()).toContain('cannot use pod CIDR \\"10.244.2.0/25\\" of node \\"aaa\\": overlaps \\"10.244.2.0/24\\" of node \\"n2\\"');
  });

  test("an agent restarted while an overlapping newcomer exists still knows which Node was established", async () => {
    await baseline();
    writeNode("aaa", "10.224.0.5", ["10.244.2.0/25"]);
    await until("the newcomer to be reported", () => metric("mncni_agent_problems") >= 1);
    agent!.kill("SIGTERM");
    await agent!.exited;
    startAgent();
    // The metrics server answers once the first pass is done.
    await until("the restarted agent to report the newcomer", () => metric("mncni_agent_problems") >= 1);
    expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
  });

  test("a source that becomes unreadable keeps the last good state: not ready, reported, routes kept", async () => {
    await baseline();
    const moved = `${manifests}.away`;
    renameSync(manifests, moved);
    try {
      await until("not ready", () => curl("/readyz").endsWith("503") && metric("mncni_agent_problems") >= 1);
      expect(routes()).toEqual(["10.244.2.0/24 via 10.224.0.2"]);
      expect(conflistRanges()).toEqual([[{ subnet: "10.244.1.0/24" }]]);
      expect(log()).toContain("cannot read manifests directory");
    } finally {
      renameSync(moved, manifests);
    }
    await until("ready again", () => curl("/readyz").endsWith("200"));
  });
});
