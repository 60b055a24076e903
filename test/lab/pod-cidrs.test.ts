// The lab allocates node pod CIDRs with the controller's allocator (issue 12, item 3: one
// implementation): node k gets the k-th /size (subnet 0 unused), the lowest free one after a
// removal, and exhaustion is a plain message.
import { describe, expect, test } from "bun:test";
import { allocatePodCidrs, validateOptions } from "../../src/lab/lab.ts";
import type { LabState, NodeState } from "../../src/lab/state.ts";

type S = Pick<LabState, "options" | "nodes">;
const lab = (clusterCidr: string, nodeCidrSize: number, clusterCidr6?: string): S => ({
  options: { mode: "bridge", routing: "host-gw", clusterCidr, nodeCidrSize, ...(clusterCidr6 ? { clusterCidr6 } : {}), wiring: "agent", selfCmd: [] },
  nodes: [],
});
const add = (s: S): string[] => {
  const podCidrs = allocatePodCidrs(s);
  s.nodes.push({ podCidrs } as NodeState);
  return podCidrs;
};

describe("lab node pod CIDRs", () => {
  test("node k gets the k-th /size of each cluster CIDR", () => {
    const s = lab("10.244.0.0/16", 24, "fd00:10:244::/56");
    expect(add(s)).toEqual(["10.244.1.0/24", "fd00:10:244:1::/64"]);
    expect(add(s)).toEqual(["10.244.2.0/24", "fd00:10:244:2::/64"]);
    expect(add(s)).toEqual(["10.244.3.0/24", "fd00:10:244:3::/64"]);
  });

  test("a removed node's CIDR is the lowest free one, handed out again", () => {
    const s = lab("10.244.0.0/16", 24);
    for (let i = 0; i < 3; i++) add(s);
    s.nodes.splice(0, 1);
    expect(add(s)).toEqual(["10.244.1.0/24"]);
    expect(add(s)).toEqual(["10.244.4.0/24"]);
  });

  test("exhaustion names the cluster CIDR and the size", () => {
    const s = lab("10.244.0.0/22", 24);
    for (let i = 0; i < 3; i++) add(s);
    expect(() => add(s)).toThrow('cannot allocate pod CIDR: "10.244.0.0/22" has no /24 left');
  });

  test("more node subnets than the controller allows is refused up front", () => {
    expect(() => validateOptions({ name: "x", nodes: 1, podsPerNode: 0, clusterCidr: "10.0.0.0/8", nodeCidrSize: 28 } as Parameters<typeof validateOptions>[0]))
      .toThrow(/cannot use --node-cidr-size "28": .*2\^16/);
  });
});
