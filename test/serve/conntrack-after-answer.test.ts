// Conntrack cleanup of a served ADD (#29): the stale entries of the pod's address go, the
// others stay (`conntrack -L` in the node namespace is the independent view), and the walk
// of the kernel's conntrack table that forgetting takes comes after the answer, not before
// it: strace on the server orders the answer's write to the plugin's socket and the
// ctnetlink dump request. A plugin process (no server) still forgets before it answers.
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { destroyAllNodes, type TestNode } from "../plugin/fixture.ts";
import { run } from "../helpers/netns.ts";
import { servedNode, stopServers, until } from "./serve-fixture.ts";

setDefaultTimeout(60_000);
afterEach(stopServers);
afterAll(destroyAllNodes);

const POD = "10.244.1.50";
const OTHER = "10.244.1.51";

const inNode = (node: TestNode, argv: string[]) => run(["ip", "netns", "exec", node.ns, ...argv], { allowFail: true });
const tracked = (node: TestNode) => inNode(node, ["conntrack", "-L", "-f", "ipv4"]).stdout + inNode(node, ["conntrack", "-L", "-f", "ipv6"]).stdout;

/** A node namespace that tracks connections (a ruleset with a ct match, as any node has), with entries injected. */
function trackSome(node: TestNode): void {
  run(["ip", "netns", "exec", node.ns, "nft", "add table inet mnctest; add chain inet mnctest pre { type filter hook prerouting priority 0; }; add rule inet mnctest pre ct state new accept"]);
  const ins = (args: string) => expect(inNode(node, ["conntrack", "-I", ...args.split(" "), "-t", "600"]).code).toBe(0);
  // Stale: the pod's address as source, as destination, and as a DNAT target (reply source).
  ins(`-p tcp -s ${POD} -d 10.200.0.1 --sport 40000 --dport 80 --state ESTABLISHED`);
  ins(`-p udp -s 10.99.0.7 -d ${POD} --sport 5353 --dport 53`);
  ins(`-p udp -s 10.99.0.8 -d 10.96.0.10 --sport 999 --dport 53 -r ${POD} -q 10.99.0.8 --reply-port-src 53 --reply-port-dst 999`);
  // Kept: a neighbour's address, an unrelated flow, IPv6.
  ins(`-p tcp -s ${OTHER} -d 10.200.0.1 --sport 40001 --dport 80 --state ESTABLISHED`);
  ins(`-p udp -s 10.99.0.9 -d 10.200.0.2 --sport 1000 --dport 53`);
  ins(`-p udp -s fd00:99::9 -d fd00:200::2 --sport 1000 --dport 53`);
  for (let i = 0; i < 40; i++) ins(`-p tcp -s 10.98.${i}.1 -d 10.200.0.1 --sport ${30000 + i} --dport 443 --state ESTABLISHED`);
}

const staleGone = (t: string) => !t.includes(`=${POD} `);

function expectKept(t: string): void {
  expect(t).toContain(`src=${OTHER} `);
  expect(t).toContain("src=10.99.0.9 ");
  expect(t).toContain("src=fd00:99::9 ");
  expect(t.split("\n").filter((l) => l.includes("dport=443 ")).length).toBe(40);
}

describe("conntrack cleanup at ADD", () => {
  test("served: the pod address's stale entries go after the answer, in one walk; the others stay", async () => {
    const { node, server, socket } = await servedNode();
    trackSome(node);
    expect(tracked(node)).toContain(`dst=${POD} `);
    const conf = node.conf({ stack: "v4", extra: { agentSocket: socket } });
    const trace = `${node.dir}/strace.out`;
    // -f: the server's every thread; the decoded netlink shows which request is the dump.
    const strace = Bun.spawn(["strace", "-f", "-qq", "-e", "trace=sendto,sendmsg,write,writev,close", "-s", "64", "-o", trace, "-p", String(server.pid)], { stdout: "ignore", stderr: "pipe" });
    try {
      await until("strace is attached", () => (readFileSync(`/proc/${server.pid}/status`, "utf8").match(/TracerPid:\s+(\d+)/)?.[1] ?? "0") !== "0");
      const pod = node.pod();
      const r = node.add(conf, { pod, id: "ctserved", args: `IP=${POD}` });
      expect(r.ips[0].address).toBe(`${POD}/24`);
      await until("the stale entries are gone", () => staleGone(tracked(node)));
      expectKept(tracked(node));
    } finally {
      strace.kill("SIGINT");
      await strace.exited;
    }
    const lines = readFileSync(trace, "utf8").split("\n");
    const answer = lines.findIndex((l) => l.includes('"answer 0\\n'));
    expect(answer).toBeGreaterThanOrEqual(0);
    // The plugin reads the answer to EOF: the server closes its end before it walks.
    const fd = lines[answer]!.match(/(?:sendto|write)\((\d+),/)![1];
    const closed = lines.findIndex((l, i) => i > answer && l.includes(`close(${fd})`));
    // A conntrack dump request (IPCTNL_MSG_CT_GET with NLM_F_DUMP), decoded or not (strace
    // decodes netlink only when it knows the socket's protocol).
    const dumps = lines.flatMap((l, i) => (/nlmsg_type=(NFNL_SUBSYS_CTNETLINK<<8\|IPCTNL_MSG_CT_GET|0x101 )/.test(l) && /NLM_F_DUMP|0x300/.test(l) ? [i] : []));
    expect(dumps).toHaveLength(1);
    expect(closed).toBeGreaterThan(answer);
    expect(dumps[0]!).toBeGreaterThan(closed);
    rmSync(trace, { force: true });
  });

  test("served: an address a served DEL released, and a fresh one, are given with no walk at all (IPAM flow marks)", async () => {
    const { node, server, socket } = await servedNode();
    trackSome(node);
    const conf = node.conf({ stack: "v4", extra: { agentSocket: socket } });
    // The network's first ADD (no marks yet) walks after its answer; its DEL forgets, then clears the mark.
    const first = node.pod();
    node.add(conf, { pod: first, id: "ctmark-a", args: `IP=${POD}` });
    await until("the stale entries are gone", () => staleGone(tracked(node)));
    expect(node.del(conf, { pod: first, id: "ctmark-a" }).code).toBe(0);
    node.deletePod(first);
    const trace = `${node.dir}/strace-marks.out`;
    const strace = Bun.spawn(["strace", "-f", "-qq", "-e", "trace=sendto,sendmsg", "-s", "64", "-o", trace, "-p", String(server.pid)], { stdout: "ignore", stderr: "pipe" });
    try {
      await until("strace is attached", () => (readFileSync(`/proc/${server.pid}/status`, "utf8").match(/TracerPid:\s+(\d+)/)?.[1] ?? "0") !== "0");
      expect(node.add(conf, { pod: node.pod(), id: "ctmark-b", args: `IP=${POD}` }).ips[0].address).toBe(`${POD}/24`);
      expect(node.add(conf, { pod: node.pod(), id: "ctmark-c", args: `IP=${OTHER}` }).ips[0].address).toBe(`${OTHER}/24`);
      // A call after them: whatever they left for after their answers has run.
      expect(node.call("STATUS", conf).code).toBe(0);
    } finally {
      strace.kill("SIGINT");
      await strace.exited;
    }
    const dumps = readFileSync(trace, "utf8").split("\n").filter((l) => /nlmsg_type=(NFNL_SUBSYS_CTNETLINK<<8\|IPCTNL_MSG_CT_GET|0x101 )/.test(l) && /NLM_F_DUMP|0x300/.test(l));
    expect(dumps).toEqual([]);
    expectKept(tracked(node));
    rmSync(trace, { force: true });
  });

  test("a plugin process forgets before it answers, in one walk for both families", async () => {
    const { node } = await servedNode();
    trackSome(node);
    const conf = node.conf({ stack: "v4" });
    const pod = node.pod();
    node.add(conf, { pod, id: "ctalone", args: `IP=${POD}` });
    const t = tracked(node);
    expect(staleGone(t)).toBe(true);
    expectKept(t);
  });
});
