// The insight tools find the cause when a lab is broken on purpose (#26 "The tools must not
// mislead"): each test breaks one thing behind mncni's back, checks with an independent view
// that it really is broken (traffic, ip -j), and that the tool names the cause.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Attachment } from "../../src/obs/attachments.ts";
import { run } from "../helpers/netns.ts";
import { WIRING, downAll, lab, newLabName } from "../lab/lab-cli.ts";

setDefaultTimeout(90_000);
afterAll(downAll);

const inspect = (name: string, what: string) => {
  const r = lab(name, ["inspect", what, "--json"], { allowFail: true });
  return { code: r.code, a: JSON.parse(r.stdout) as Attachment };
};
const pings = (netns: string, ip: string) => run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip], { allowFail: true }).code === 0;

for (const mode of ["bridge", "routed"] as const) describe(`inspect on a broken lab (${mode} mode)`, () => {
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
    run(["ip", "netns", "exec", `${name}-node1`, "nft", "flush", "set", family, "mncni-antispoof", "addr4"]);
    // Independently: the pod's traffic is really dropped now.
    expect(pings(pod, peer)).toBe(false);
    const { code, a } = inspect(name, "node1/pod1");
    expect(code).toBe(1);
    expect(a.problems.join("\n")).toContain(`address ${mine} of the pod missing from set addr4`);
    const text = lab(name, ["inspect", "node1"], { allowFail: true }).stdout;
    expect(text).toContain("missing from set addr4");
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
