// The insight tools find the cause when a lab is broken on purpose (#26 "The tools must not
// mislead"): each test breaks one thing behind mncni's back, checks with an independent view
// that it really is broken (traffic, ip -j), and that the tool names the cause.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Attachment } from "../../src/obs/attachments.ts";
import type { Explanation } from "../../src/obs/explain.ts";
import { run } from "../helpers/netns.ts";
import { WIRING, downAll, lab, newLabName } from "../lab/lab-cli.ts";

const inspect = (name: string, what: string) => {
  const r = lab(name, ["inspect", what, "--json"], { allowFail: true });
  return { code: r.code, a: JSON.parse(r.stdout) as Attachment };
};
const agentPid = (name: string, node: string): number | undefined =>
  (JSON.parse(lab(name, ["status", "--json"]).stdout) as { nodes: { name: string; agentPid?: number }[] }).nodes.find((n) => n.name === node)?.agentPid;
const pings = (netns: string, ip: string) => run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip], { allowFail: true }).code === 0;

/**
 * inspect on a broken lab in one mode. `make test` runs bridge mode (truth.e2e.test.ts); routed
 * mode runs in `make test-matrix` (truth-routed.matrix.test.ts).
 */
export function inspectBrokenSuite(mode: "bridge" | "routed"): void {
setDefaultTimeout(90_000);
afterAll(downAll);
describe(`inspect on a broken lab (${mode} mode)`, () => {
  const name = newLabName();
  const family = mode === "bridge" ? "bridge" : "inet";
  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--mode", mode, "--wiring", WIRING]);
  });

  test("a flushed anti-spoofing address set: the pod's address is named as missing", () => {
    const pod = `${name}-node1-pod1`;
    const peer = inspect(name, "node2/pod1").a.resultIps[0]!.split("/")[0]!;
    expect(inspect(name, "node1/pod1").code).toBe(0);
    const mine = inspect(name, "node1/pod1").a.resultIps[0]!.split("/")[0]!;
    // The agent puts the elements back (next test): held still while inspect looks.
    const agent = agentPid(name, "node1");
    if (agent) process.kill(agent, "SIGSTOP");
    try {
      run(["ip", "netns", "exec", `${name}-node1`, "nft", "flush", "set", family, "mncni-antispoof", "addr4"]);
      // Independently: the pod's traffic is really dropped now.
      expect(pings(pod, peer)).toBe(false);
      const { code, a } = inspect(name, "node1/pod1");
      expect(code).toBe(1);
      expect(a.problems.join("\n")).toContain(`address ${mine} of the pod missing from set addr4`);
      const text = lab(name, ["inspect", "node1"], { allowFail: true }).stdout;
      expect(text).toContain("missing from set addr4");
    } finally {
      if (agent) process.kill(agent, "SIGCONT");
    }
  });

  test.skipIf(WIRING === "static")("the agent puts a flushed anti-spoofing set back, as it repairs routes", async () => {
    const pod = `${name}-node1-pod1`;
    const peer = inspect(name, "node2/pod1").a.resultIps[0]!.split("/")[0]!;
    run(["ip", "netns", "exec", `${name}-node1`, "nft", "flush", "set", family, "mncni-antispoof", "addr4"]);
    run(["ip", "netns", "exec", `${name}-node1`, "nft", "flush", "set", family, "mncni-antispoof", "addr6"]);
    // Within the agent's resync (10 s), read independently: the element is back and traffic flows.
    let back = false;
    for (let i = 0; i < 60 && !back; i++) {
      await Bun.sleep(250);
      back = run(["ip", "netns", "exec", `${name}-node1`, "nft", "list", "set", family, "mncni-antispoof", "addr4"]).stdout.includes("elements");
    }
    expect(back).toBe(true);
    expect(pings(pod, peer)).toBe(true);
    expect(inspect(name, "node1/pod1").code).toBe(0);
  });

  test("a pod whose MTU is above the node's pod MTU is a problem", () => {
    const pod = `${name}-node2-pod1`;
    const before = inspect(name, "node2/pod1").a.podInterface!.mtu;
    run(["ip", "-n", pod, "link", "set", "eth0", "mtu", String(before + 50)]);
    try {
      const { code, a } = inspect(name, "node2/pod1");
      expect(code).toBe(1);
      expect(a.problems.join("\n")).toContain(`pod MTU ${before + 50} is above this node's pod MTU ${before}`);
    } finally {
      run(["ip", "-n", pod, "link", "set", "eth0", "mtu", String(before)]);
    }
    expect(inspect(name, "node2/pod1").code).toBe(0);
  });
});
}

/** explain on broken labs: a pod without a default route, and across tunnels (its own labs). */
export function explainBrokenSuites(): void {
setDefaultTimeout(90_000);
afterAll(downAll);
describe("explain on a broken lab", () => {
  const name = newLabName();
  const explain = (src: string, dst: string, ...extra: string[]) => {
    const r = lab(name, ["explain", src, dst, "--json", ...extra], { allowFail: true });
    return { code: r.code, ex: JSON.parse(r.stdout) as Explanation, stderr: r.stderr };
  };
  const tcpWorks = (netns: string, ip: string) =>
    run(["ip", "netns", "exec", netns, "timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${ip}/7777 && head -c 1 <&3`], { allowFail: true }).code === 0;
  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--wiring", WIRING]);
  });

  test("a pod without a default route: TCP is traced both ways, the reply ends there; a probe that cannot leave still shows the path", () => {
    const pod = `${name}-node1-pod1`;
    const podIP = (ns: string) => JSON.parse(run(["ip", "-n", ns, "-j", "-4", "addr", "show", "dev", "eth0"]).stdout)[0].addr_info[0].local as string;
    const [ip1, ip2] = [podIP(pod), podIP(`${name}-node2-pod1`)];
    const healthy = explain("node2/pod1", "node1/pod1", "--proto", "tcp");
    expect(healthy.code).toBe(0);
    expect(healthy.ex.reply?.outcome).toBe("delivered");
    expect(healthy.ex.reply?.probe?.mismatches).toEqual([]);
    expect(healthy.ex.reply?.probe?.places.filter((t) => t.verdict !== "not seen").map((t) => t.place)).toEqual(healthy.ex.reply!.hops.map((h) => h.place));
    const gw = (JSON.parse(run(["ip", "-n", pod, "-j", "route", "show", "default"]).stdout) as { gateway: string }[])[0]!.gateway;
    run(["ip", "-n", pod, "route", "del", "default"]);
    try {
      // Independently: the SYN gets there, the connection does not.
      expect(tcpWorks(`${name}-node2-pod1`, ip1)).toBe(false);
      const { code, ex } = explain("node2/pod1", "node1/pod1", "--proto", "tcp");
      // The trace agrees (the SYN arrives, the SYN-ACK is not sent): 0, the reply's end is the answer.
      expect(ex.reply?.probe?.mismatches).toEqual([]);
      expect(code).toBe(0);
      expect(ex.outcome).toBe("delivered");
      expect(ex.reply?.dst).toBe(ip2);
      expect(ex.reply?.outcome).toBe("unreachable");
      expect(ex.reply?.hops.map((h) => h.place)).toEqual(["node1/pod1"]);
      expect(ex.reply?.hops[0]!.error).toContain("ENETUNREACH");
      const text = lab(name, ["explain", "node2/pod1", "node1/pod1", "--proto", "tcp"], { allowFail: true }).stdout;
      expect(text).toContain("computed reply: unreachable in node1/pod1 (no route: ENETUNREACH)");
      // From the pod: the probe cannot be sent; the computed path is still there, and where it ends.
      const out = explain("node1/pod1", "node2/pod1", "--proto", "tcp");
      expect(out.code).toBe(0);
      expect(out.ex.hops.map((h) => h.place)).toEqual(["node1/pod1"]);
      expect(out.ex.outcome).toBe("unreachable");
      expect(out.ex.probe?.notSent).toContain("Network is unreachable");
    } finally {
      run(["ip", "-n", pod, "route", "add", "default", "via", gw, "dev", "eth0"], { allowFail: true });
    }
    expect(tcpWorks(`${name}-node2-pod1`, ip1)).toBe(true);
  });
});

for (const routing of [["--routing", "vxlan", "--ipv6"], ["--segments", "2"]]) describe(`explain across a tunnel (${routing.join(" ")})`, () => {
  const name = newLabName();
  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--wiring", WIRING, ...routing]);
  });
  const explain = (src: string, dst: string, ...extra: string[]) => {
    const r = lab(name, ["explain", src, dst, "--json", ...extra], { allowFail: true });
    return { code: r.code, ex: JSON.parse(r.stdout) as Explanation };
  };

  test("the path follows the FDB to the peer's VTEP and goes on there, both ways, as the trace saw it", () => {
    const node2 = JSON.parse(lab(name, ["status", "--json"]).stdout).nodes.find((n: { name: string }) => n.name === "node2").address as string;
    const { code, ex } = explain("node1/pod1", "node2/pod1", "--proto", "tcp");
    expect(ex.hops.map((h) => h.place)).toEqual(["node1/pod1", "node1", "node2", "node2/pod1"]);
    expect(ex.hops[1]!.tunnel?.vtep).toBe(node2);
    expect(ex.hops[2]!.iif).toBe(ex.hops[1]!.tunnel!.dev);
    expect(ex.outcome).toBe("delivered");
    expect(ex.reply?.outcome).toBe("delivered");
    expect(ex.probe?.mismatches).toEqual([]);
    expect(ex.reply?.probe?.mismatches).toEqual([]);
    expect(code).toBe(0);
    if (!routing.includes("--ipv6")) return;
    // Dual-stack: one VXLAN device per family, same VNI; the IPv6 packet comes out of the IPv6 one.
    const ip6 = JSON.parse(run(["ip", "-n", `${name}-node2-pod1`, "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global"]).stdout)[0].addr_info[0].local as string;
    run(["ip", "netns", "exec", `${name}-node1-pod1`, "ping", "-6", "-c", "1", "-W", "2", ip6], { allowFail: true }); // neighbours resolved first
    const six = explain("node1/pod1", "node2/pod1", "-6", "--proto", "tcp");
    expect(six.ex.hops[1]!.tunnel?.vtep).toContain(":");
    expect(six.ex.hops[2]!.iif).toBe(six.ex.hops[1]!.tunnel!.dev);
    expect(six.ex.probe?.mismatches).toEqual([]);
    expect(six.code).toBe(0);
  });

  test.skipIf(WIRING === "static")("with the peer's FDB entry gone (agent stopped), explain names it and the packet really is lost", () => {
    const st = JSON.parse(lab(name, ["status", "--json"]).stdout) as { nodes: { name: string; agentPid: number }[] };
    const agent = st.nodes.find((n) => n.name === "node1")!.agentPid;
    const dev = explain("node1/pod1", "node2/pod1").ex.hops[1]!.tunnel!.dev;
    const fdb = JSON.parse(run(["bridge", "-n", `${name}-node1`, "-j", "fdb", "show", "dev", dev]).stdout) as { mac: string; dst?: string }[];
    const peer = fdb.find((f) => f.dst && f.mac !== "00:00:00:00:00:00")!;
    const ip2 = explain("node1/pod1", "node2/pod1").ex.dst;
    process.kill(agent, "SIGSTOP");
    try {
      run(["bridge", "-n", `${name}-node1`, "fdb", "del", peer.mac, "dev", dev, "dst", peer.dst!, "self"]);
      expect(pings(`${name}-node1-pod1`, ip2)).toBe(false);
      const { code, ex } = explain("node1/pod1", "node2/pod1");
      expect(ex.probe?.mismatches).toEqual([]);
      expect(code).toBe(0);
      expect(ex.hops[1]!.error).toContain(`no FDB entry on ${dev} for ${peer.mac}`);
    } finally {
      process.kill(agent, "SIGCONT");
    }
  });
});
}
