// The comparison of pod MTUs between nodes, and the published pod MTU read from a Node's status condition (pure).
import { describe, expect, test } from "bun:test";
import { podMTUMismatches } from "../../src/agent/routing/index.ts";
import { nodeInfo, POD_MTU_CONDITION } from "../../src/cluster/index.ts";

describe("podMTUMismatches", () => {
  const nodes = [
    { name: "c", podMTU: 1400 },
    { name: "me", podMTU: 1000 }, // its own stale annotation is not a peer
    { name: "a", podMTU: 1450 },
    { name: "b", podMTU: 1450 },
    { name: "d" }, // published nothing: not compared
  ];
  test("peers with another MTU, by name, with theirs", () => {
    expect([...podMTUMismatches("me", 1450, nodes)]).toEqual([["c", 1400]]);
  });
  test("every peer that differs; none when all agree or none published", () => {
    expect([...podMTUMismatches("me", 1500, nodes)]).toEqual([["a", 1450], ["b", 1450], ["c", 1400]]);
    expect(podMTUMismatches("me", 1450, [{ name: "a", podMTU: 1450 }, { name: "d" }]).size).toBe(0);
    expect(podMTUMismatches("me", 1450, []).size).toBe(0);
  });
});

describe("nodeInfo: the published pod MTU", () => {
  const node = (conditions?: Record<string, string>, annotations?: Record<string, string>) =>
    nodeInfo({
      kind: "Node", metadata: { name: "n", ...(annotations ? { annotations } : {}) },
      status: { addresses: [{ type: "InternalIP", address: "10.0.0.1" }], ...(conditions ? { conditions: Object.entries(conditions).map(([type, message]) => ({ type, status: "True", message })) } : {}) },
    });
  test("read from the MncniPodMTU status condition", () => {
    expect(node({ [POD_MTU_CONDITION]: "1450" }).podMTU).toBe(1450);
    expect(node({ [POD_MTU_CONDITION]: "1450" }).problems).toEqual([]);
  });
  test("absent when not published; the annotation earlier versions published is not read (the agent may no longer patch Nodes)", () => {
    expect(node().podMTU).toBeUndefined();
    expect(node({ NetworkUnavailable: "1" }).podMTU).toBeUndefined();
    expect(node(undefined, { "mncni.io/pod-mtu": "1450" }).podMTU).toBeUndefined();
  });
  test.each(["", "abc", "1450.5", "-1", "67", "70000", " 1450"])("%p is a problem, never compared", (v) => {
    const n = node({ [POD_MTU_CONDITION]: v });
    expect(n.podMTU).toBeUndefined();
    expect(n.problems).toEqual([`condition ${POD_MTU_CONDITION} "${v}" is not an MTU (68..65535)`]);
  });
});
