// podMTUWhy: the pod MTU explained from the underlay and the backend (#26.7).
import { expect, test } from "bun:test";
import { podMTUWhy } from "../../src/agent/routing/index.ts";

test("auto keeps the VXLAN headroom and says so; host-gw adds nothing; a number that does not add up is said to", () => {
  expect(podMTUWhy({ mtu: 1450, underlay: 1500, overhead: 50, routing: "auto" })).toBe("1450 = 1500 underlay − 50 VXLAN headroom kept by auto (one pod MTU for direct and tunnelled peers)");
  expect(podMTUWhy({ mtu: 1450, underlay: 1500, overhead: 50, routing: "vxlan" })).toBe("1450 = 1500 underlay − 50 VXLAN header");
  expect(podMTUWhy({ mtu: 9000, underlay: 9000, overhead: 0, routing: "host-gw" })).toBe("9000 = 9000 underlay (host-gw adds no header)");
  expect(podMTUWhy({ mtu: 1400, underlay: 1500, overhead: 50, routing: "auto" })).toContain("not 1500 underlay − 50 = 1450");
  expect(podMTUWhy({ mtu: 1450, overhead: 50, routing: "auto" })).toContain("1500 (assumed");
});
