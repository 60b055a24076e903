// The pure node CIDR allocator: no I/O, so every edge is checked directly.
import { describe, expect, test } from "bun:test";
import { NodeCIDRAllocator } from "../../src/controller/cidr-allocator.ts";

const v4 = (cidr: string, mask: number) => ({ family: 4 as const, clusterCIDR: cidr, nodeMaskSize: mask });
const v6 = (cidr: string, mask: number) => ({ family: 6 as const, clusterCIDR: cidr, nodeMaskSize: mask });

describe("NodeCIDRAllocator", () => {
  test("hands out node subnets in order, one per family, never one in use", () => {
    const a = new NodeCIDRAllocator([v4("10.244.0.0/16", 24), v6("fd00:10:244::/56", 64)]);
    expect(a.occupy("10.244.1.0/24")).toBe("ok");
    expect(a.allocate()).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    expect(a.allocate()).toEqual(["10.244.2.0/24", "fd00:10:244:1::/64"]);
    expect(a.usage().map((u) => [u.size, u.allocated])).toEqual([[256, 3], [256, 2]]);
  });

  test("occupy: outside the cluster CIDR, other family, overlap (also by a larger CIDR); nothing changes then", () => {
    const a = new NodeCIDRAllocator([v4("10.244.0.0/16", 24)]);
    expect(a.occupy("10.245.0.0/24")).toBe("outside");
    expect(a.occupy("10.0.0.0/8")).toBe("outside");
    expect(a.occupy("fd00::/64")).toBe("outside");
    expect(a.occupy("10.244.3.0/24")).toBe("ok");
    expect(a.occupy("10.244.3.0/24")).toBe("overlap");
    expect(a.occupy("10.244.3.128/25")).toBe("overlap");
    expect(a.occupy("10.244.0.0/22")).toBe("overlap");
    expect(a.usage()[0]!.allocated).toBe(1);
    // A larger CIDR holds every node subnet it covers.
    expect(a.occupy("10.244.4.0/23")).toBe("ok");
    expect(a.usage()[0]!.allocated).toBe(3);
    a.release("10.244.4.0/23");
    expect(a.usage()[0]!.allocated).toBe(1);
  });

  test("exhaustion: undefined, and a half-done dual-stack allocation is given back", () => {
    const a = new NodeCIDRAllocator([v4("10.0.0.0/30", 31), v6("fd00::/63", 64)]);
    expect(a.occupy("fd00::/64")).toBe("ok");
    expect(a.occupy("fd00:0:0:1::/64")).toBe("ok");
    expect(a.allocate()).toBeUndefined();
    expect(a.usage().map((u) => u.allocated)).toEqual([0, 2]);
    a.release("fd00::/64");
    const got = a.allocate()!;
    expect(got[1]).toBe("fd00::/64");
    expect(["10.0.0.0/31", "10.0.0.2/31"]).toContain(got[0]!);
    expect(a.usage().map((u) => u.allocated)).toEqual([1, 2]);
  });

  test("release: a released subnet comes back after the others (next fit)", () => {
    const a = new NodeCIDRAllocator([v4("10.0.0.0/24", 26)]);
    const got = [a.allocate(), a.allocate(), a.allocate()].map((x) => x![0]);
    expect(got).toEqual(["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26"]);
    a.release("10.0.0.64/26");
    expect(a.allocate()).toEqual(["10.0.0.192/26"]);
    expect(a.allocate()).toEqual(["10.0.0.64/26"]);
    expect(a.allocate()).toBeUndefined();
  });

  test("65,536 node subnets at most, as kube-controller-manager; bad masks refused", () => {
    expect(new NodeCIDRAllocator([v4("10.0.0.0/8", 24)]).usage()[0]!.size).toBe(65536);
    expect(() => new NodeCIDRAllocator([v4("10.0.0.0/8", 25)])).toThrow(/more than 2\^16/);
    expect(() => new NodeCIDRAllocator([v4("10.0.0.0/16", 8)])).toThrow(/cannot split cluster CIDR "10.0.0.0\/16" into \/8/);
    expect(() => new NodeCIDRAllocator([v4("10.0.0.0/16", 24), v4("10.1.0.0/16", 24)])).toThrow(/one cluster CIDR per family/);
    expect(() => new NodeCIDRAllocator([])).toThrow(/no cluster CIDR/);
  });

  test("a full IPv6 sweep: every subnet distinct, all inside the cluster CIDR", () => {
    const a = new NodeCIDRAllocator([v6("fd00:10:244::/48", 64)]);
    const seen = new Set<string>();
    for (let i = 0; i < 65536; i++) seen.add(a.allocate()![0]!);
    expect(seen.size).toBe(65536);
    expect(seen.has("fd00:10:244:ffff::/64")).toBe(true);
    expect(a.allocate()).toBeUndefined();
  });
});
