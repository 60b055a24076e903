// ipMasq (standalone hosts): pod traffic to outside its range leaves with the node's address
// (IPv4 and IPv6), and the network's nft table goes with the network's last attachment. The client namespace
// gets no route back to the pods, so a reply can only arrive if the node masqueraded.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, familyOf, plain, reaches, TestNode, UPLINK, waitListening, type Fam } from "./fixture.ts";

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");

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

/**
 * The source address a TCP connection from `from` to `dst` arrives with at the client, as a
 * server in the client namespace sees it (Bun's socket.remoteAddress).
 */
async function sourceSeenByClient(node: TestNode, from: string, f: Fam, port: number): Promise<string> {
  const script = `const s = Bun.listen({ hostname: "${f === 4 ? "0.0.0.0" : "::"}", port: ${port}, socket: { open(c) { console.log(c.remoteAddress); c.end(); s.stop(); process.exit(0); }, data() {} } });`;
  const srv = Bun.spawn(["ip", "netns", "exec", node.client, "timeout", "10", BUN, "-e", script], { stdout: "pipe", stderr: "pipe" });
  try {
    await waitListening(node.client, port);
    const dst = f === 4 ? UPLINK.client[4] : `[${UPLINK.client[6]}]`;
    run(["ip", "netns", "exec", from, "timeout", "5", "busybox", "nc", "-w", "2", dst.replace(/[[\]]/g, ""), String(port)], { stdin: "x\n", allowFail: true });
    return (await new Response(srv.stdout).text()).trim();
  } finally {
    srv.kill();
    await srv.exited;
  }
}

// With the client's routes back to the pods in place, the source address the client sees
// tells whether the node masqueraded: the pod's own without ipMasq, the node's with it.
describe.each(["bridge", "routed"] as const)("ipMasq source address, %s mode, both families", (mode) => {
  let node: TestNode;
  beforeAll(() => {
    node = new TestNode({ uplink: true });
  });

  for (const f of [4, 6] as Fam[]) {
    test(`IPv${f}: the client sees the pod's address without ipMasq and the node's uplink address with it`, async () => {
      const plainConf = node.conf({ mode, stack: "dual", name: `plain${f}` });
      const p = node.addPod(plainConf, `plain${f}`);
      const podIp = plain(p.result.ips.find((i: any) => familyOf(i.address) === f).address);
      expect(await reaches(p.pod, UPLINK.client[f])).toBe(true);
      expect(await sourceSeenByClient(node, p.pod, f, 7400 + f)).toBe(podIp);
      expect(node.del(plainConf, p).code).toBe(0);

      const masqConf = node.conf({ mode, stack: "dual", name: `masq${f}`, extra: { ipMasq: true } });
      const m = node.addPod(masqConf, `masq${f}`);
      expect(await reaches(m.pod, UPLINK.client[f])).toBe(true);
      expect(await sourceSeenByClient(node, m.pod, f, 7410 + f)).toBe(UPLINK.node[f]);
      expect(node.del(masqConf, m).code).toBe(0);
    });
  }
});
