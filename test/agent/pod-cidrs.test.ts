import { describe, expect, test } from "bun:test";
import { admitPodCIDRs } from "../../src/agent/pod-cidrs.ts";
import { buildClusterState } from "../../src/cluster/index.ts";
import type { KubeNode } from "../../src/cluster/types.ts";

const node = (name: string, cidrs: string[], ip: string, created?: string): KubeNode => ({
  kind: "Node",
  metadata: { name, ...(created ? { creationTimestamp: created } : {}) },
  spec: { podCIDRs: cidrs },
  status: { addresses: [{ type: "InternalIP", address: ip }] },
});
const addr = (cidr: string, scope = 0) => {
  const [address, len] = cidr.split("/") as [string, string];
  return { family: (cidr.includes(":") ? 6 : 4) as 4 | 6, cidr, address, prefixLen: Number(len), scope };
};
/** node1's view: underlay 10.224.0.0/24, a bridge gateway in its own pod CIDR, loopback. */
const localAddrs = [addr("10.224.0.1/24"), addr("10.244.1.1/24"), addr("127.0.0.1/8", 254)];

function admit(nodes: KubeNode[], o: { self?: string; inUse?: [string, string[]][]; clusterCidr?: string[] } = {}) {
  return admitPodCIDRs({
    self: o.self ?? "node1", nodes: buildClusterState(nodes).nodes, clusterCidr: o.clusterCidr ?? ["10.244.0.0/16", "fd00::/48"],
    localAddrs, inUse: new Map(o.inUse ?? []),
  });
}

const base = [node("node1", ["10.244.1.0/24"], "10.224.0.1"), node("node2", ["10.244.2.0/24"], "10.224.0.2")];

describe("admitPodCIDRs", () => {
  test("good Nodes pass unchanged, dual-stack order kept; the bridge's subnet is not underlay", () => {
    const a = admit([...base, node("node3", ["fd00:0:0:3::/64", "10.244.3.0/24"], "10.224.0.3")]);
    expect(a.problems).toEqual([]);
    expect(a.podCIDRs.get("node3")).toEqual(["fd00:0:0:3::/64", "10.244.3.0/24"]);
    expect(a.podCIDRs.get("node1")).toEqual(["10.244.1.0/24"]);
  });

  test("outside the cluster CIDR, a default route, the underlay subnet: refused and reported", () => {
    const a = admit([...base, node("n3", ["0.0.0.0/0"], "10.224.0.3"), node("n4", ["192.168.7.0/24"], "10.224.0.4"), node("n5", ["::/0"], "10.224.0.5")]);
    expect(a.podCIDRs.get("n3")).toEqual([]);
    expect(a.podCIDRs.get("n4")).toEqual([]);
    expect(a.podCIDRs.get("n5")).toEqual([]);
    expect(a.problems).toHaveLength(3);
    expect(a.problems[1]).toBe('cannot use pod CIDR "192.168.7.0/24" of node "n4": outside the cluster CIDR (10.244.0.0/16)');
    // Inside a wide cluster CIDR, the underlay is still refused.
    const u = admit([...base, node("n3", ["10.224.0.0/24"], "10.224.0.3")], { clusterCidr: ["10.0.0.0/8"] });
    expect(u.podCIDRs.get("n3")).toEqual([]);
    expect(u.problems).toEqual(['cannot use pod CIDR "10.224.0.0/24" of node "n3": overlaps the connected subnet "10.224.0.0/24" of this node\'s underlay']);
  });

  test("a pod CIDR or InternalIP that does not parse is reported", () => {
    const bad: KubeNode = { kind: "Node", metadata: { name: "n3" }, spec: { podCIDRs: ["10.244.3.0/33"] }, status: { addresses: [{ type: "InternalIP", address: "nope" }] } };
    const a = admit([...base, bad]);
    expect(a.podCIDRs.get("n3")).toEqual([]);
    expect(a.problems).toHaveLength(2);
    expect(a.problems.every((p) => p.startsWith('cannot use node "n3": '))).toBe(true);
  });

  test("a second CIDR of one family is refused, the first kept", () => {
    const a = admit([...base, node("n3", ["10.244.3.0/24", "10.244.4.0/24", "fd00:0:0:3::/64"], "10.224.0.3")]);
    expect(a.podCIDRs.get("n3")).toEqual(["10.244.3.0/24", "fd00:0:0:3::/64"]);
    expect(a.problems).toEqual(['cannot use pod CIDR "10.244.4.0/24" of node "n3": the node already has IPv4 pod CIDR "10.244.3.0/24" (one per family)']);
  });

  test("a change in place of a CIDR in use keeps the old one", () => {
    const a = admit([node("node1", ["10.244.9.0/24"], "10.224.0.1"), node("node2", ["10.244.8.0/24"], "10.224.0.2")], {
      inUse: [["node1", ["10.244.1.0/24"]], ["node2", ["10.244.2.0/24"]]],
    });
    expect(a.podCIDRs.get("node1")).toEqual(["10.244.1.0/24"]);
    expect(a.podCIDRs.get("node2")).toEqual(["10.244.2.0/24"]);
    expect(a.problems).toHaveLength(2);
    expect(a.problems[0]).toContain('changed in place from "10.244.1.0/24"');
  });

  test("overlaps: an established Node keeps its CIDR, and every node decides the same way", () => {
    // node1 and node2 are established (each agent has their CIDRs in use); "aaa" sorts first by name.
    const nodes = [...base, node("aaa", ["10.244.1.0/25"], "10.224.0.9")];
    const inUse: [string, string[]][] = [["node1", ["10.244.1.0/24"]], ["node2", ["10.244.2.0/24"]]];
    const views = ["node1", "node2", "aaa"].map((self) => admit(nodes, { self, inUse: inUse.filter(([n]) => n !== "aaa") }));
    for (const v of views) {
      expect(v.podCIDRs.get("node1")).toEqual(["10.244.1.0/24"]);
      expect(v.podCIDRs.get("aaa")).toEqual([]);
      expect(v.problems).toEqual(['cannot use pod CIDR "10.244.1.0/25" of node "aaa": overlaps "10.244.1.0/24" of node "node1", which was there first; skipping it']);
    }
    // Without history (a new agent), the older Node wins, whatever the names.
    const fresh = admit([node("zzz", ["10.244.5.0/24"], "10.224.0.5", "2026-01-01T00:00:00Z"), node("aaa", ["10.244.5.0/25"], "10.224.0.9", "2026-02-01T00:00:00Z")], { self: "node2" });
    expect(fresh.podCIDRs.get("zzz")).toEqual(["10.244.5.0/24"]);
    expect(fresh.podCIDRs.get("aaa")).toEqual([]);
  });

  test("established per CIDR: a Node in use in one family does not displace another's CIDR in the other", () => {
    const nodes = [...base, node("aaa", ["10.244.3.0/24", "fd00:0:0:9::/64"], "10.224.0.3"), node("zzz", ["fd00:0:0:9::/64"], "10.224.0.4")];
    const a = admit(nodes, { inUse: [["aaa", ["10.244.3.0/24"]], ["zzz", ["fd00:0:0:9::/64"]]] });
    expect(a.podCIDRs.get("zzz")).toEqual(["fd00:0:0:9::/64"]);
    expect(a.podCIDRs.get("aaa")).toEqual(["10.244.3.0/24"]);
  });

  test("idempotent: its own result as the CIDRs in use gives the same result and the same problems", () => {
    const nodes = [...base, node("aaa", ["10.244.1.0/25"], "10.224.0.9"), node("n3", ["10.244.3.0/24", "10.244.4.0/24"], "10.224.0.3"), node("n4", ["0.0.0.0/0"], "10.224.0.4")];
    const first = admit(nodes);
    const again = admit(nodes, { inUse: [...first.podCIDRs].filter(([, c]) => c.length > 0) });
    expect(again).toEqual(first);
  });

  test("faults remembered between passes are forgotten when the underlay changes", () => {
    const memo = { faults: new Map<string, string | undefined>() };
    const nodes = buildClusterState([...base, node("n3", ["10.224.0.0/24"], "10.224.0.3")]).nodes;
    const run = (addrs: typeof localAddrs) => admitPodCIDRs({ self: "node1", nodes, clusterCidr: ["10.0.0.0/8"], localAddrs: addrs, inUse: new Map(), memo });
    expect(run(localAddrs).podCIDRs.get("n3")).toEqual([]);
    expect(run(localAddrs).podCIDRs.get("n3")).toEqual([]);
    expect(run([addr("10.225.0.1/24"), addr("10.244.1.1/24")]).podCIDRs.get("n3")).toEqual(["10.224.0.0/24"]);
  });
});
