// podDevice: routed pods on a netkit pair (L3: no MAC, no ARP), or on a veth where the kernel
// has no netkit, with the choice visible in the invocation log; bridge mode refuses netkit.
// Checked with real traffic, `ip -j -d link` (the kind of both ends) and rollback.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { kernelHas } from "../helpers/kernel-config.ts";
import { ipJson } from "../helpers/netns.ts";
import {
  antiSpoofVeths,
  destroyAllNodes,
  hostVethOf,
  hostVeths,
  link,
  links,
  mncniRoutes,
  NET,
  plain,
  reaches,
  reservations,
  TestNode,
  V4_DEFAULT,
  V6_DEFAULT,
} from "./fixture.ts";

afterAll(destroyAllNodes);
setDefaultTimeout(30_000);

/** The phases of the invocation log's ADD records of one container. */
function addPhases(node: TestNode, id: string): string[][] {
  return readFileSync(node.logFile, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((r) => r.command === "ADD" && r.containerId === id)
    .map((r) => Object.keys(r.phases ?? {}));
}

// Whether the kernel has netkit is read from its config, not asked of the plugin under test.
const netkit = kernelHas("NETKIT");

describe("routed mode, podDevice netkit", () => {
  const node = new TestNode({ uplink: true });
  const conf = node.conf({ mode: "routed", extra: { podDevice: "netkit" } });
  const p1 = node.addPod(conf, "nk1");
  const p2 = node.addPod(conf, "nk2");

  test.skipIf(!netkit)(`both ends are netkit (ip -j -d link), with no MAC, and the log names the device${netkit ? "" : " — skipped: this kernel has no netkit"}`, () => {
    for (const p of [p1, p2]) {
      expect(hostVethOf(node.ns, NET, p.id)!.linkinfo?.info_kind).toBe("netkit");
      expect(link(p.pod, "eth0")!.linkinfo?.info_kind).toBe("netkit");
    }
    expect(addPhases(node, "nk1")[0]!).toContain("netkit");
    expect(p1.result.interfaces.at(-1).mac).toBeUndefined();
  });

  test.skipIf(netkit)(`on a kernel without netkit: both ends are veth, and the log says netkit is unavailable${netkit ? " — skipped: this kernel has netkit" : ""}`, () => {
    for (const p of [p1, p2]) {
      expect(hostVethOf(node.ns, NET, p.id)!.linkinfo?.info_kind).toBe("veth");
      expect(link(p.pod, "eth0")!.linkinfo?.info_kind).toBe("veth");
    }
    const phases = addPhases(node, "nk1")[0]!;
    expect(phases).toContain("veth");
    expect(phases).toContain("netkit-unavailable");
  });

  test("pod to pod, node to pod and outside to pod traffic, both families", async () => {
    for (const f of [4, 6] as const) {
      const dst = plain(p2.result.ips.find((i: any) => (f === 4) === !i.address.includes(":")).address);
      expect(await reaches(p1.pod, dst)).toBe(true);
      expect(await reaches(node.ns, dst)).toBe(true);
      expect(await reaches(node.client, dst)).toBe(true);
    }
  });

  test("DEL removes the pair, its host routes and its reservation", () => {
    node.call("DEL", conf, { pod: p1.pod, id: "nk1" });
    expect(hostVethOf(node.ns, NET, "nk1")).toBeUndefined();
    expect(links(p1.pod).map((l) => l.ifname)).toEqual(["lo"]);
    expect(mncniRoutes(node.ns).filter((r) => r.dev !== hostVethOf(node.ns, NET, "nk2")!.ifname)).toEqual([]);
  });

  test("a failure after the pair and its host routes exist rolls all of it back", () => {
    const n = new TestNode();
    const pod = n.pod();
    const routes = [V4_DEFAULT, V6_DEFAULT, { dst: "192.168.50.0/24", gw: "10.77.0.1" }];
    const r = n.call("ADD", n.conf({ mode: "routed", routes, extra: { podDevice: "netkit" } }), { pod, id: "late" });
    expect(r.code).not.toBe(0);
    expect(r.json.msg).toMatch(/cannot add route "192\.168\.50\.0\/24" via 10\.77\.0\.1/);
    expect(hostVeths(n.ns)).toEqual([]);
    expect(reservations(n.dataDir).size).toBe(0);
    expect(antiSpoofVeths(n.ns, "inet")).toEqual([]);
    expect(mncniRoutes(n.ns)).toEqual([]);
    expect(links(pod).map((l) => l.ifname)).toEqual(["lo"]);
  });
});

describe("podDevice config errors: nothing is created", () => {
  test.each<[string, string, RegExp, Record<string, unknown>]>([
    ["bridge", "netkit", /podDevice.*"netkit" is not offered in bridge mode/, {}],
    ["routed", "tap", /podDevice.*"tap" is not one of "veth", "netkit"/, {}],
    // The fast path's program works on Ethernet frames: netkit's L3 pair has none.
    ["routed", "netkit", /fastPath.*cannot be combined with podDevice "netkit"/, { fastPath: true }],
  ])("%s mode, podDevice %s: code 7 naming the field", (mode, podDevice, msg, extra) => {
    const node = new TestNode();
    const pod = node.pod();
    const r = node.call("ADD", node.conf({ mode: mode as "bridge" | "routed", extra: { podDevice, ...extra } }), { pod, id: "bad" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toMatch(msg);
    expect(ipJson(node.ns, ["link", "show"]).map((l: any) => l.ifname)).toEqual(["lo"]);
    expect(links(pod).map((l) => l.ifname)).toEqual(["lo"]);
  });
});
