// Why a lab node is not ready, said where an operator looks: `lab status` (a `not ready:
// NODE: reason` line per reason, `notReady` in --json) and `mncni status` on the node (its
// agent's /readyz reasons). A Node manifest claiming node1's pod CIDR makes every agent not
// ready (the pod CIDR is refused, a problem); removing it makes them ready again, and the
// reasons go. Checked against the agents' own /readyz answers. (The Node goes through the lab's
// API server, or into its manifests directory on --source dir.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { LabStatus } from "../../src/lab/status.ts";
import type { NodeStatus } from "../../src/obs/status.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { inNetns } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { downAll, LAB_CMD, lab, labJson, leftovers, newLabName, putClusterObject } from "./lab-cli.ts";

setDefaultTimeout(90_000);
afterAll(downAll);

describe("lab: why a node is not ready", () => {
  const name = newLabName();
  let st: LabStatus;
  const node = (n: string) => st.nodes.find((x) => x.name === n)!;
  const status = () => (st = labJson<LabStatus>(name, ["status"]));
  let removeIntruder = () => {};
  const nodeStatus = (n: string, json: boolean) => {
    const p = nodePaths(name, n);
    return inNetns(node(n).namespace, [...LAB_CMD, "status", ...(json ? ["--json"] : []), "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir], { allowFail: true }).stdout;
  };

  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "0", "--wiring", "agent"]);
    status();
  });

  afterAll(() => {
    lab(name, ["down", "-q"], { allowFail: true });
    expect(leftovers(name)).toEqual([]);
  });

  test("a node claiming node1's pod CIDR: every node not ready, and lab status and mncni status say why", async () => {
    expect(st.nodes.map((n) => [n.name, n.ready, n.notReady])).toEqual([["node1", true, []], ["node2", true, []]]);
    const cidr = node("node1").podCIDRs[0]!;
    removeIntruder = putClusterObject(name, {
      apiVersion: "v1", kind: "Node", metadata: { name: "zz" }, spec: { podCIDR: cidr, podCIDRs: [cidr] },
      status: { addresses: [{ type: "InternalIP", address: "10.224.0.99" }] },
    } as never);
    await until("both nodes not ready", () => status().nodes.every((n) => !n.ready && n.notReady.length > 0));
    for (const n of st.nodes) {
      expect(n.notReady.join("\n")).toContain('"zz"');
      // The reasons are the agent's own.
      for (const r of n.notReady) expect(n.agentReadyz).toContain(`- ${r}`);
    }
    const text = lab(name, ["status"]).stdout;
    for (const n of st.nodes) for (const r of n.notReady) expect(text).toContain(`not ready: ${n.name}: ${r}`);
    // On the node itself: the same reasons, as data and as text.
    const ns = JSON.parse(nodeStatus("node2", true)) as NodeStatus;
    expect(ns.agent).toMatchObject({ reachable: true, ready: false, reasons: node("node2").notReady });
    const nsText = nodeStatus("node2", false);
    expect(nsText).toContain("not ready");
    for (const r of node("node2").notReady) expect(nsText).toContain(r);
  });

  test("the intruder removed: ready again, no reasons", async () => {
    removeIntruder();
    await until("both nodes ready", () => status().nodes.every((n) => n.ready));
    expect(st.nodes.map((n) => n.notReady)).toEqual([[], []]);
    expect(lab(name, ["status"]).stdout).not.toContain("not ready:");
  });

  test("a dead agent: lab status names it", async () => {
    const pid = node("node1").agentPid!;
    process.kill(pid, "SIGKILL");
    await until("node1 not ready", () => !status().nodes[0]!.ready);
    expect(node("node1").notReady).toEqual([`agent (pid ${pid}) is not running (see its agent.log)`]);
    expect(lab(name, ["status"]).stdout).toContain(`not ready: node1: agent (pid ${pid}) is not running`);
  });
});
