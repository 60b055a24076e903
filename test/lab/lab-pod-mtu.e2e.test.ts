// The pod MTU comparison in the lab (issue 14): the lab publishes each agent's pod MTU (the
// `mtu` of the conflist the agent wrote) as the status condition MncniPodMTU of its Node: on the
// kubernetes source the agent patches it itself, on --source dir the lab copies it into the Node
// manifest; the agents read the Nodes and compare. Two nodes that agree: no warning. `lab node mtu`
// gives node2 a smaller underlay: its agent writes a smaller pod MTU, the lab publishes it,
// and both agents report the mismatch as a warning on /readyz and in
// mncni_agent_pod_mtu_mismatch while staying ready; back to the same MTU, the warnings go.
// Checked against the Node manifests, the conflists, `ip -j link` and the agents' /metrics;
// `mncni status` on the node lists the warning as well.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { LabStatus } from "../../src/lab/status.ts";
import type { NodeStatus } from "../../src/obs/status.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { inNetns, ipJson } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { clusterObjects, downAll, LAB_CMD, lab, labJson, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(90_000);
afterAll(downAll);

describe("lab: pod MTU published on the Nodes and compared by the agents", () => {
  const name = newLabName();
  let st: LabStatus;
  const node = (n: string) => st.nodes.find((x) => x.name === n)!;
  const published = (n: string) =>
    (clusterObjects(name, "node").find((x) => x.metadata.name === n) as { status: { conditions?: { type: string; message?: string }[] } }).status.conditions?.find((c) => c.type === "MncniPodMTU")?.message;
  const conflistMTU = (n: string) => (JSON.parse(readFileSync(node(n).cniConfig!, "utf8")) as { plugins: { mtu: number }[] }).plugins[0]!.mtu;
  const metrics = (n: string) => inNetns(node(n).namespace, ["curl", "-s", "http://127.0.0.1:9817/metrics"]).stdout;
  const mismatch = (n: string, peer: string) => Number(new RegExp(`^mncni_agent_pod_mtu_mismatch\\{node="${peer}"\\} (\\d+)$`, "m").exec(metrics(n))?.[1] ?? NaN);
  const status = () => (st = labJson<LabStatus>(name, ["status"]));

  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--wiring", "agent"]);
    status();
  });

  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("each Node manifest carries its agent's pod MTU; equal MTUs: no warning, ready", () => {
    for (const n of ["node1", "node2"]) {
      expect(node(n).podMTU).toBe(conflistMTU(n));
      expect(published(n)).toBe(String(conflistMTU(n)));
      expect(node(n).warnings).toEqual([]);
      expect(node(n).ready).toBe(true);
    }
    expect(node("node1").podMTU).toBe(node("node2").podMTU);
    expect(metrics("node1")).not.toContain("mncni_agent_pod_mtu_mismatch{");
  });

  test("lab node mtu: node2's smaller underlay is a smaller pod MTU, reported by both agents as a warning; both stay ready", async () => {
    const own = node("node1").podMTU!;
    lab(name, ["node", "mtu", "node2", "1400", "-q"]);
    expect(ipJson<{ mtu: number }[]>(node("node2").namespace, ["link", "show", "eth0"])[0]!.mtu).toBe(1400);
    const small = own - 100;
    status();
    expect(conflistMTU("node2")).toBe(small);
    expect(published("node2")).toBe(String(small));
    expect(node("node2").podMTU).toBe(small);
    // node1's agent reads the changed manifest on its next pass.
    await until("node1 reports node2's pod MTU", () => mismatch("node1", "node2") === small);
    await until("both warnings in lab status", () => status().nodes.every((n) => n.warnings.length === 1));
    expect(node("node1").warnings[0]).toStartWith(`node "node2" publishes pod MTU ${small}, this node's is ${own}`);
    expect(node("node2").warnings[0]).toStartWith(`node "node1" publishes pod MTU ${own}, this node's is ${small}`);
    expect(mismatch("node2", "node1")).toBe(own);
    for (const n of st.nodes) expect([n.name, n.ready, n.agentReadyz?.startsWith("200 ready")]).toEqual([n.name, true, true]);
    const text = lab(name, ["status"]).stdout;
    expect(text).toContain(`warning: node1: node "node2" publishes pod MTU ${small}`);
    expect(text).toMatch(/POD MTU/);
    // On the node itself, `mncni status` shows it too, and no problem.
    const p = nodePaths(name, "node1");
    const ns = JSON.parse(inNetns(node("node1").namespace, [...LAB_CMD, "status", "--json", "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir]).stdout) as NodeStatus;
    expect(ns.agent).toMatchObject({ reachable: true, ready: true, reasons: [] });
    expect(ns.agent.warnings).toEqual([node("node1").warnings[0]!]);
    expect(ns.problems).toEqual([]);
  });

  test("the same MTU again: the warnings go", async () => {
    lab(name, ["node", "mtu", "node2", "1500", "-q"]);
    await until("no warnings", () => status().nodes.every((n) => n.warnings.length === 0));
    expect(node("node2").podMTU).toBe(node("node1").podMTU);
    expect(metrics("node1")).not.toContain("mncni_agent_pod_mtu_mismatch{");
    expect(lab(name, ["status"]).stdout).not.toContain("warning:");
  });

  test("bad input names the value and changes nothing", () => {
    for (const [arg, why] of [["abc", 'cannot use MTU "abc"'], ["100", "must be 1280..9000"]] as const) {
      const r = lab(name, ["node", "mtu", "node2", arg], { allowFail: true });
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain(why);
    }
    expect(lab(name, ["node", "mtu", "node9", "1400"], { allowFail: true }).stderr).toContain('cannot find node "node9"');
    expect(ipJson<{ mtu: number }[]>(node("node2").namespace, ["link", "show", "eth0"])[0]!.mtu).toBe(1500);
  });
});
