// Conntrack at ADD without a walk: mncni's IPAM marks an address from its reservation until a
// DEL that forgot its flows released it, and a plugin process walks the kernel's conntrack
// table (a ctnetlink dump) only for an address still marked. On a node that tracks entries:
// - the ADD of an address nobody held, or one a DEL released, makes no dump (strace on the
//   plugin process: no IPCTNL_MSG_CT_GET with NLM_F_DUMP);
// - an address whose holder never got its DEL (its pod gone, the reservation collected by GC
//   or removed by hand) still loses that holder's entries at its next ADD (`conntrack -L`
//   in the node namespace is the independent view).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { run } from "../helpers/netns.ts";
import { requireBinary } from "../helpers/binary.ts";
import { destroyAllNodes, TestNode } from "./fixture.ts";

setDefaultTimeout(60_000);

const NET = "ctmarks";
const inNode = (node: TestNode, argv: string[]) => run(["ip", "netns", "exec", node.ns, ...argv], { allowFail: true });
const tracked = (node: TestNode) => inNode(node, ["conntrack", "-L", "-f", "ipv4"]).stdout;

/** Stale entries of `addr`: as source, as destination, and as a DNAT target. */
function injectFlows(node: TestNode, addr: string, n: number): void {
  const ins = (args: string) => expect(inNode(node, ["conntrack", "-I", ...args.split(" "), "-t", "600"]).code).toBe(0);
  ins(`-p tcp -s ${addr} -d 10.200.0.1 --sport ${40000 + n} --dport 80 --state ESTABLISHED`);
  ins(`-p udp -s 10.99.0.7 -d ${addr} --sport ${5000 + n} --dport 53`);
  ins(`-p udp -s 10.99.0.8 -d 10.96.0.10 --sport ${900 + n} --dport 53 -r ${addr} -q 10.99.0.8 --reply-port-src 53 --reply-port-dst ${900 + n}`);
}

/** Number of conntrack dump requests (IPCTNL_MSG_CT_GET with NLM_F_DUMP) in an strace output, decoded or not. */
const dumps = (trace: string) =>
  readFileSync(trace, "utf8")
    .split("\n")
    .filter((l) => /nlmsg_type=(NFNL_SUBSYS_CTNETLINK<<8\|IPCTNL_MSG_CT_GET|0x101 )/.test(l) && /NLM_F_DUMP|0x300/.test(l)).length;

describe("conntrack flow marks (plugin process)", () => {
  let node: TestNode;
  let dir: string;
  const conf = () => node.conf({ stack: "v4", name: NET, extra: { bridge: "mnfm0" } });
  const reservation = (addr: string) => `${node.dataDir}/${NET}/${addr}`;

  beforeAll(() => {
    // The plugin under strace when the call says where to write (TRACE_OUT), as itself otherwise.
    dir = mkdtempSync("/tmp/mncni-ctmarks-");
    const wrapper = `${dir}/mncni`;
    writeFileSync(wrapper, `#!/bin/sh\n[ -n "$TRACE_OUT" ] || exec ${resolve(requireBinary())}\nexec strace -f -qq -e trace=sendto,sendmsg -s 64 -o "$TRACE_OUT" ${resolve(requireBinary())}\n`);
    chmodSync(wrapper, 0o755);
    node = new TestNode({ bin: wrapper });
    // A node that tracks connections: a ct match in its ruleset, and entries (a neighbour's, unrelated ones).
    run(["ip", "netns", "exec", node.ns, "nft", "add table inet mnctest; add chain inet mnctest pre { type filter hook prerouting priority 0; }; add rule inet mnctest pre ct state new accept"]);
    injectFlows(node, "10.244.1.99", 0);
    for (let i = 0; i < 20; i++) expect(inNode(node, ["conntrack", "-I", "-p", "tcp", "-s", `10.98.${i}.1`, "-d", "10.200.0.1", "--sport", String(30000 + i), "--dport", "443", "--state", "ESTABLISHED", "-t", "600"]).code).toBe(0);
  });
  afterAll(() => {
    destroyAllNodes();
    rmSync(dir, { recursive: true, force: true });
  });

  /** ADD under strace; returns the number of conntrack dumps it made. */
  function tracedAdd(pod: string, id: string, addr: string): number {
    const out = `${dir}/${id}.trace`;
    const r = node.call("ADD", conf(), { pod, id, args: `IP=${addr}`, env: { TRACE_OUT: out } });
    expect({ code: r.code, out: r.code ? r.stdout + r.stderr : "" }).toEqual({ code: 0, out: "" });
    expect(r.json.ips[0].address).toBe(`${addr}/24`);
    return dumps(out);
  }

  test("an address nobody held, or one a DEL released, is given without a conntrack dump", () => {
    expect(tracked(node)).toContain("dport=443");
    // The network's first ADD has no marks to go by (they start with it): it walks.
    expect(tracedAdd(node.pod(), "fm-first", "10.244.1.50")).toBe(1);
    // A fresh address.
    const pod = node.pod();
    expect(tracedAdd(pod, "fm-fresh", "10.244.1.51")).toBe(0);
    // Its holder's flows, forgotten by its DEL; then the address again.
    injectFlows(node, "10.244.1.51", 1);
    expect(node.del(conf(), { pod, id: "fm-fresh" }).code).toBe(0);
    expect(tracked(node)).not.toContain("=10.244.1.51 ");
    node.deletePod(pod);
    expect(tracedAdd(node.pod(), "fm-again", "10.244.1.51")).toBe(0);
    // The unrelated entries are all there.
    expect(tracked(node).split("\n").filter((l) => l.includes("dport=443 ")).length).toBe(20);
  });

  test("an address whose holder got no DEL (GC collected it) loses that holder's entries at its next ADD", () => {
    const crashed = node.pod();
    node.add(conf(), { pod: crashed, id: "fm-crashed", args: "IP=10.244.1.52" });
    injectFlows(node, "10.244.1.52", 2);
    // The pod is gone without a DEL; GC releases its address (and removes its veth).
    node.deletePod(crashed);
    expect(node.gc(conf(), [{ id: "fm-first" }, { id: "fm-again" }]).code).toBe(0);
    expect(tracked(node)).toContain("=10.244.1.52 ");
    expect(tracedAdd(node.pod(), "fm-reuse", "10.244.1.52")).toBe(1);
    expect(tracked(node)).not.toContain("=10.244.1.52 ");
    expect(tracked(node)).toContain("=10.244.1.99 ");
  });

  test("an address whose reservation was removed by hand loses its holder's entries at its next ADD", () => {
    const pod = node.pod();
    node.add(conf(), { pod, id: "fm-reclaimed", args: "IP=10.244.1.53" });
    injectFlows(node, "10.244.1.53", 3);
    unlinkSync(reservation("10.244.1.53"));
    node.deletePod(pod);
    expect(tracked(node)).toContain("=10.244.1.53 ");
    expect(tracedAdd(node.pod(), "fm-reclaim2", "10.244.1.53")).toBe(1);
    expect(tracked(node)).not.toContain("=10.244.1.53 ");
  });
});
