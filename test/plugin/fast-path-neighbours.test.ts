// The fast path's program shares a pod's host-side device with others: what it hands to the
// stack must still meet what others put on that device's ingress: here what the reference
// bandwidth plugin chained after mncni puts there for a pod's egress limit (a u32 filter whose
// mirred action redirects every packet to an ifb, which shapes it and hands it back), which the
// program's tcx hook runs before. The program returns TC_ACT_UNSPEC (tcx: "next") for those
// packets, not TC_ACT_OK, which on tcx ends the device's ingress there and skips every clsact
// filter. Checked with the ifb's own counters (`ip -j -s link`), in both modes, the pod not in
// the plain-pods map (no agent: every packet takes the stack). And taking the fast path off the
// device leaves the other's qdisc and filter in place.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { netnsPath, run } from "../helpers/netns.ts";
import { Netlink } from "../../src/kernel/index.ts";
import { detachFastPath } from "../../src/plugin/fast-path.ts";
import { ingressPrograms } from "../helpers/ingress-programs.ts";
import { destroyAllNodes, hostVethOf, NET, reaches, TestNode, UPLINK, type Mode } from "./fixture.ts";

setDefaultTimeout(60_000);
afterAll(() => destroyAllNodes());

/** Packets the ifb sent on (each one the filter redirected to it). */
function ifbPackets(ns: string, ifb: string): number {
  return (JSON.parse(run(["ip", "-n", ns, "-j", "-s", "link", "show", ifb]).stdout) as any[])[0].stats64.tx.packets;
}

for (const mode of ["bridge", "routed"] as Mode[]) {
  describe(`fast path beside another filter on the pod's device (${mode} mode)`, () => {
    test("the packets the program hands to the stack still meet the other filter", async () => {
      const node = new TestNode({ uplink: true });
      const conf = node.conf({ mode, stack: "v4", extra: { fastPath: true, bridge: "mnfpn0" } });
      const p = node.addPod(conf, "fpn-a");
      const veth = hostVethOf(node.ns, NET, p.id)!.ifname;
      expect(ingressPrograms(node.ns, veth).map((x) => `${x.name} ${x.hook}`)).toEqual(["mncni_pod_redir tcx"]);
      // What a chained bandwidth plugin adds (its ingress qdisc is clsact's twin: tc accepts either).
      const ifb = "fpnifb0";
      run(["ip", "-n", node.ns, "link", "add", ifb, "type", "ifb"]);
      run(["ip", "-n", node.ns, "link", "set", ifb, "up"]);
      run(["ip", "netns", "exec", node.ns, "tc", "qdisc", "add", "dev", veth, "ingress"]);
      run(["ip", "netns", "exec", node.ns, "tc", "filter", "add", "dev", veth, "parent", "ffff:", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb]);
      const before = ifbPackets(node.ns, ifb);
      expect(await reaches(p.pod, UPLINK.client[4])).toBe(true);
      expect(ifbPackets(node.ns, ifb)).toBeGreaterThan(before);
      // The fast path taken off the device (what the agent does for --fast-path off on every
      // pod): ours goes, the other's qdisc and redirect stay.
      const nl = Netlink.open(netnsPath(node.ns));
      try {
        detachFastPath(nl, nl.link(veth)!.index);
      } finally {
        nl.close();
      }
      expect(ingressPrograms(node.ns, veth)).toEqual([]);
      const kinds = (JSON.parse(run(["ip", "netns", "exec", node.ns, "tc", "-j", "qdisc", "show", "dev", veth]).stdout) as { kind: string }[]).map((q) => q.kind);
      expect(kinds).toContain("ingress");
      const still = ifbPackets(node.ns, ifb);
      expect(await reaches(p.pod, UPLINK.client[4])).toBe(true);
      expect(ifbPackets(node.ns, ifb)).toBeGreaterThan(still);
      node.expectOk(node.del(conf, p));
      node.destroy();
    });
  });
}
