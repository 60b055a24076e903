// ipMasq (standalone hosts): pod traffic to outside its range leaves with the node's address,
// and the network's nft table goes with the network's last attachment. The client namespace
// gets no route back to the pods, so a reply can only arrive if the node masqueraded.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, reaches, TestNode, UPLINK } from "./fixture.ts";

afterAll(destroyAllNodes);
setDefaultTimeout(30_000);

function masqTables(ns: string): string[] {
  const out = JSON.parse(run(["ip", "netns", "exec", ns, "nft", "-j", "list", "tables"]).stdout) as { nftables: { table?: { name: string } }[] };
  return out.nftables.flatMap((o) => (o.table && o.table.name.startsWith("mncni-masq-") ? [o.table.name] : []));
}

describe.each(["bridge", "routed"] as const)("ipMasq, %s mode", (mode) => {
  let node: TestNode;
  beforeAll(() => {
    node = new TestNode({ uplink: true });
    run(["ip", "-n", node.client, "route", "del", "10.244.0.0/16"]);
  });

  test("without ipMasq a pod cannot reach a host that has no route back (control)", async () => {
    const conf = node.conf({ stack: "v4", name: "plainnet", extra: { mode } });
    const p = node.addPod(conf, "plain1");
    expect(await reaches(p.pod, UPLINK.client[4], { withinMs: 2000 })).toBe(false);
    expect(node.del(conf, p).code).toBe(0);
  });

  test("with ipMasq it can; the table lives exactly as long as the network's attachments", async () => {
    const conf = node.conf({ stack: "v4", name: "masqnet", extra: { mode, ipMasq: true } });
    const a = node.addPod(conf, "masq1");
    const b = node.addPod(conf, "masq2");
    expect(masqTables(node.ns)).toHaveLength(1);
    expect(await reaches(a.pod, UPLINK.client[4])).toBe(true);
    expect(node.del(conf, a).code).toBe(0);
    expect(masqTables(node.ns)).toHaveLength(1);
    expect(await reaches(b.pod, UPLINK.client[4])).toBe(true);
    expect(node.del(conf, b).code).toBe(0);
    expect(masqTables(node.ns)).toEqual([]);
    expect(node.del(conf, b).code).toBe(0);
  });
});
