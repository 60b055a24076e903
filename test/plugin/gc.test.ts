// GC racing other work on the node (issue 18, defect 1): a GC of one network that deletes
// many stale host veths while another network ADDs pods must not take the new pods'
// anti-spoofing elements. The elements are read with `nft -j list`, and the protection is
// checked with real traffic: a B pod's forged source does not reach its neighbour.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import { antiSpoofEntries, antiSpoofTable, destroyAllNodes, echoesDelivered, hostVethOf, NET, plain, TestNode } from "./fixture.ts";

afterAll(destroyAllNodes);
setDefaultTimeout(120_000);

describe("GC alongside other networks", () => {
  test("a GC of A with no valid attachment, during 10 ADDs on B, leaves every B pod its elements and its protection", async () => {
    const node = new TestNode();
    const a = node.conf({ mode: "bridge", name: "mngca", stack: "v4" });
    const b = node.conf({
      mode: "bridge",
      name: "mngcb",
      stack: "v4",
      ranges: [[{ subnet: "10.245.0.0/24" }]],
      extra: { bridge: "cbr1" },
    });
    const aIds = Array.from({ length: 30 }, (_, i) => `a${i}`);
    await node.limited(4, aIds.map((id) => async () => node.expectOk(await node.spawn("ADD", a, { pod: node.pod(), id }).done)));
    expect(aIds.every((id) => hostVethOf(node.ns, "mngca", id))).toBe(true);

    const bIds = Array.from({ length: 10 }, (_, i) => `b${i}`);
    const bPods = bIds.map(() => node.pod());
    const gc = node.spawn("GC", { ...a, "cni.dev/valid-attachments": [] });
    const adds = bIds.map((id, i) => node.spawn("ADD", b, { pod: bPods[i]!, id }));
    const [gcReply, ...addReplies] = await Promise.all([gc.done, ...adds.map((x) => x.done)]);
    expect({ code: gcReply.code, out: gcReply.stdout }).toEqual({ code: 0, out: "" });
    for (const r of addReplies) node.expectOk(r);

    // A is gone, B is whole: every live B veth keeps its port and address elements.
    expect(aIds.filter((id) => hostVethOf(node.ns, "mngca", id))).toEqual([]);
    const table = antiSpoofTable(node.ns, "bridge");
    const unguarded = bIds.filter((id, i) => {
      const veth = hostVethOf(node.ns, "mngcb", id)!.ifname;
      const ip = plain(addReplies[i]!.json.ips[0].address);
      return !antiSpoofEntries(table, veth).includes(`ports: ${veth}`) || !antiSpoofEntries(table, veth).includes(`addr4: ${veth} . ${ip}`);
    });
    expect(unguarded).toEqual([]);

    // Real traffic: b0 with a forged address reaches b1 from its own address only.
    const [ip0, ip1] = [0, 1].map((i) => plain(addReplies[i]!.json.ips[0].address));
    run(["ip", "-n", bPods[0]!, "addr", "add", "10.245.0.200/32", "dev", "eth0"]);
    expect(await echoesDelivered({ from: bPods[0]!, target: bPods[1]!, dst: ip1!, source: ip0!, real: ip0!, arrive: true })).toBe(3);
    expect(await echoesDelivered({ from: bPods[0]!, target: bPods[1]!, dst: ip1!, source: "10.245.0.200", real: ip0!, arrive: false })).toBe(0);
    node.destroy();
  });

  test("leftover elements (veth gone) are removed only when they record this network, or none", () => {
    const node = new TestNode();
    const conf = node.conf({ stack: "v4" });
    const kept = node.addPod(conf, "kept");
    // Elements of veths that do not exist: one recording another network, one written by an
    // mncni that recorded none, one recording this network.
    const leftovers = { other: "mnc00000000000a", legacy: "mnc00000000000b", mine: "mnc00000000000c" };
    const comments = { other: "net=othernet 02:00:00:00:00:0a 10.244.1.250", legacy: "02:00:00:00:00:0b 10.244.1.251", mine: `net=${NET} 02:00:00:00:00:0c 10.244.1.252` };
    const script = Object.entries(leftovers)
      .map(([k, veth], i) =>
        `add element bridge mncni-antispoof ports { "${veth}" comment "${comments[k as keyof typeof comments]}" }\n` +
        `add element bridge mncni-antispoof addr4 { "${veth}" . 10.244.1.${250 + i} }\n`,
      )
      .join("");
    run(["ip", "netns", "exec", node.ns, "nft", "-f", "-"], { stdin: script });
    expect(node.gc(conf, [kept]).code).toBe(0);
    const table = antiSpoofTable(node.ns, "bridge");
    expect(antiSpoofEntries(table, leftovers.other)).toEqual([`addr4: ${leftovers.other} . 10.244.1.250`, `ports: ${leftovers.other}`]);
    expect(antiSpoofEntries(table, leftovers.legacy)).toEqual([]);
    expect(antiSpoofEntries(table, leftovers.mine)).toEqual([]);
    expect(node.check(conf, kept.result, kept).code).toBe(0);
    node.destroy();
  });
});
