// The insight commands against a lab, through the compiled binary as an operator runs them:
// inspect against `ip -j` and `nft -j` read independently; inspect finding an attachment
// broken behind mncni's back; explain for each kind of path, each confirmed by its probe
// (the kernel's nftables trace of a real packet); trace showing calls made while it runs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, unlinkSync, writeFileSync } from "node:fs";
import type { IpamReport } from "../../src/obs/ipam-show.ts";
import type { NodeStatus } from "../../src/obs/status.ts";
import { join } from "node:path";
import type { Attachment, NodeAttachments } from "../../src/obs/attachments.ts";
import type { Explanation } from "../../src/obs/explain.ts";
import { nodePaths } from "../../src/lab/topology.ts";
import { ipJson, run } from "../helpers/netns.ts";
import { until } from "../helpers/until.ts";
import { LAB_CMD, WIRING, addrPrefixOf, cidrOf, downAll, lab, labJson, labRaw, newLabName } from "../lab/lab-cli.ts";
import type { InvocationRecord } from "../../src/cni/invocation-log.ts";
import type { LabEntry } from "../../src/lab/inventory.ts";
import type { CheckReport } from "../../src/lab/check.ts";
import type { LabStatus } from "../../src/lab/status.ts";

const places = (ex: Explanation) => ex.hops.map((h) => h.place);

/**
 * The insight commands in one mode (its own lab). `make test` runs bridge mode
 * (insight.e2e.test.ts); routed mode, and both on the manifests directory, run in `make
 * test-matrix` (insight-routed.matrix.test.ts, test/lab/source-dir.matrix.test.ts).
 */
export function insightSuite(mode: "bridge" | "routed"): void {
setDefaultTimeout(60_000);
afterAll(downAll);
describe(`insight commands in a lab (${mode} mode)`, () => {
  const name = newLabName();
  const explain = (src: string, dst: string, ...extra: string[]) => {
    const r = lab(name, ["explain", src, dst, "--json", ...extra], { allowFail: true });
    return { code: r.code, ex: JSON.parse(r.stdout) as Explanation };
  };
  // Each mode's anti-spoofing table (src/plugin/bridge.ts, routed.ts).
  const guardFamily = mode === "bridge" ? "bridge" : "inet";

  /** node1's and node2's pod CIDRs (the controller's choice on the kubernetes source). */
  let c1 = "";
  let c2 = "";
  const host = (cidr: string, n: number) => `${addrPrefixOf(cidr)}${n}`;

  beforeAll(() => {
    lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "2", "--mode", mode, "--wiring", WIRING]);
    const st = labJson<LabStatus>(name, ["status"]);
    [c1, c2] = [cidrOf(st, "node1"), cidrOf(st, "node2")];
  });

  test("inspect of a healthy pod shows what ip -j and nft -j show", () => {
    const r = lab(name, ["inspect", "node1/pod1", "--json"]);
    const a = JSON.parse(r.stdout) as Attachment;
    const podNs = `${name}-node1-pod1`;
    const nodeNs = `${name}-node1`;
    const eth0 = ipJson<any[]>(podNs, ["link", "show", "eth0"])[0];
    expect(a.podInterface).toMatchObject({ name: "eth0", index: eth0.ifindex, mac: eth0.address, mtu: eth0.mtu });
    const addrs = ipJson<any[]>(podNs, ["-4", "addr", "show", "eth0"])[0].addr_info.filter((x: any) => x.scope === "global").map((x: any) => `${x.local}/${x.prefixlen}`);
    expect(a.podAddresses.filter((x) => !x.includes(":"))).toEqual(addrs);
    const routes = ipJson<any[]>(podNs, ["-4", "route", "show"]).map((x) => (x.dst === "default" ? "0.0.0.0/0" : x.dst.includes("/") ? x.dst : `${x.dst}/32`) + (x.gateway ? ` via ${x.gateway}` : ""));
    expect(a.podRoutes.filter((x) => !x.dst.includes(":")).map((x) => x.dst + (x.gw ? ` via ${x.gw}` : "")).sort()).toEqual(routes.sort());
    const veth = ipJson<any[]>(nodeNs, ["link", "show", a.hostVeth!.name])[0];
    expect(a.hostVeth).toMatchObject({ index: veth.ifindex, mac: veth.address, mtu: veth.mtu });
    const set = JSON.parse(run(["ip", "netns", "exec", nodeNs, "nft", "-j", "list", "set", guardFamily, "mncni-antispoof", "addr4"]).stdout).nftables.find((x: any) => x.set).set;
    const mine = (set.elem ?? []).map((e: any) => e.concat).filter((c: string[]) => c[0] === a.hostVeth!.name).map((c: string[]) => c[1]);
    expect(a.antiSpoofing.filter((x) => x.includes("addr4")).map((x) => x.split(": ")[1])).toEqual(mine);
    expect(mine.length).toBeGreaterThan(0);
    expect(a.history.ADD?.outcome).toBe("ok");
    expect(a.problems).toEqual([]);
    expect(r.code).toBe(0);
  });

  test("explain: same node, confirmed by the probe", () => {
    const { code, ex } = explain("node1/pod1", "node1/pod2");
    expect(ex.outcome).toBe("delivered");
    expect(places(ex)).toEqual(["node1/pod1", "node1", "node1/pod2"]);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("explain: across nodes, confirmed by the probe", () => {
    const { code, ex } = explain("node1/pod1", "node2/pod2", "--proto", "tcp");
    expect(places(ex)).toEqual(["node1/pod1", "node1", "node2", "node2/pod2"]);
    expect(ex.hops[1]!.route!.gw).toBe(ipJson<any[]>(`${name}-node1`, ["route", "get", ex.dst])[0].gateway);
    expect(ex.hops.some((h) => h.masquerade)).toBe(false);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("explain: pod to the external host is masqueraded, and the probe sees the node's address arrive", () => {
    const { code, ex } = explain("node1/pod1", "ext", "--proto", "icmp");
    const node = ex.hops.find((h) => h.place === "node1")!;
    expect(node.masquerade?.to).toBe("10.224.0.11");
    expect(ex.hops.at(-1)).toMatchObject({ place: "ext", delivered: true, source: "10.224.0.11" });
    const seenAtExt = ex.probe!.places.find((p) => p.place === "ext")!.events.find((e) => e.saddr)!;
    expect(seenAtExt.saddr).toBe("10.224.0.11");
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("explain: node to pod, confirmed by the probe", () => {
    const { code, ex } = explain("node2", "node1/pod2");
    expect(places(ex)).toEqual(["node2", "node1", "node1/pod2"]);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(code).toBe(0);
  });

  test("explain: a spoofed source is dropped by anti-spoofing, and the probe is dropped by that rule", () => {
    const { code, ex } = explain("node1/pod1", "node2/pod1", "--spoof-src", host(c1, 200));
    expect(ex.outcome).toBe("dropped");
    expect(ex.hops.at(-1)!.dropped).toContain("anti-spoofing");
    const traced = ex.probe!.places.find((p) => p.verdict === "dropped")!;
    expect(traced.place).toBe("node1");
    expect(traced.droppedBy).toContain("mncni-antispoof");
    expect(ex.probe!.mismatches).toEqual([]);
    // Dropped, and the trace agrees: 0 (1 is for a mismatch).
    expect(code).toBe(0);
  });

  test("explain on a node (not the lab's view): pods by namespace/name, the path leaving the node, probe-confirmed", () => {
    const p = nodePaths(name, "node1");
    const onNode = (...args: string[]) => run(["ip", "netns", "exec", `${name}-node1`, ...LAB_CMD, "explain", ...args, "--probe", "--json", "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir], { allowFail: true });
    const same = onNode("default/node1-pod1", "default/node1-pod2");
    const ex = JSON.parse(same.stdout) as Explanation;
    expect(ex.hops.map((h) => h.kind)).toEqual(["pod", "node", "pod"]);
    expect(ex.probe!.mismatches).toEqual([]);
    expect(same.code).toBe(0);
    const away = onNode("default/node1-pod1", host(c2, 2));
    const ex2 = JSON.parse(away.stdout) as Explanation;
    expect(ex2.outcome).toBe("leaves");
    expect(ex2.hops.at(-1)!.route!.gw).toBe("10.224.0.12");
    expect(ex2.probe!.mismatches).toEqual([]);
    expect(away.code).toBe(0);
  });

  test("trace shows the calls made while it runs", async () => {
    // --last 1: the newest past call is printed before following starts, so its line is the
    // sign that trace follows (no fixed sleep); then the test waits for the lines it expects.
    const proc = Bun.spawn([...LAB_CMD, "lab", "trace", "--name", name, "node1", "--follow", "--json", "--last", "1"], { stdout: "pipe", stderr: "pipe" });
    let out = "";
    const lines = () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const pump = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stdout) out += dec.decode(chunk, { stream: true });
    })();
    const calls = () => lines().filter((l) => l.call).map((l) => l.call).slice(1);
    try {
      await until("trace to print the last past call", () => lines().length >= 1, 10_000);
      lab(name, ["pod", "add", "node1", "pod9"]);
      lab(name, ["pod", "remove", "node1", "pod9"]);
      await until("the ADD and the DEL of pod9", () => ["ADD", "DEL"].every((v) => calls().some((c) => c.command === v && c.podName === "node1-pod9")), 10_000);
    } finally {
      proc.kill("SIGINT");
    }
    await proc.exited;
    await pump;
    expect(calls().every((c) => c.podName === "node1-pod9")).toBe(true);
    const summary = lines().at(-1).summary;
    expect(summary.ADD.calls).toBeGreaterThanOrEqual(3);
    expect(summary.ADD.p99Ms).toBeGreaterThanOrEqual(summary.ADD.p50Ms);
  });

  test("status on a node: the agent ready, the peer's route as `ip -j route` has it, calls counted", () => {
    const p = nodePaths(name, "node1");
    const r = run(["ip", "netns", "exec", `${name}-node1`, LAB_CMD[0]!, ...LAB_CMD.slice(1), "status", "--json", "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir]);
    const st = JSON.parse(r.stdout) as NodeStatus;
    expect(st.agent).toMatchObject({ reachable: true, ready: true, reasons: [] });
    const kernel = ipJson<any[]>(`${name}-node1`, ["-4", "route", "show", "proto", "77"]).filter((x) => x.gateway).map((x) => ({ podCidr: x.dst, via: x.gateway, dev: x.dev, path: "direct" as const }));
    expect(st.peers).toEqual(kernel);
    expect(kernel.length).toBe(1);
    expect(st.calls.ADD!.calls).toBeGreaterThanOrEqual(2);
    expect(st.problems).toEqual([]);
  });

  test("--json carries the facts the text shows: inspect, status, ipam show, trace, explain, lab status, lab list", () => {
    const p = nodePaths(name, "node1");
    const onNode = (...args: string[]) => run(["ip", "netns", "exec", `${name}-node1`, ...LAB_CMD, ...args, "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir], { allowFail: true });
    const both = (argv: string[]) => ({ json: JSON.parse(lab(name, [...argv, "--json"], { allowFail: true }).stdout), text: lab(name, argv, { allowFail: true }).stdout });
    const row = (...cells: (string | number)[]) => new RegExp(cells.map((c) => String(c).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("\\s+"));

    const inspect = both(["inspect", "node1"]);
    const n = inspect.json as NodeAttachments;
    expect(inspect.text).toContain(`${n.node}: ${n.attachments.length} attachment(s) on network "${n.network}"`);
    expect(n.attachments.length).toBe(2);
    for (const a of n.attachments) expect(inspect.text).toMatch(row(`${a.podNamespace}/${a.podName}`, a.containerId, a.ifname, a.hostVeth!.name, a.resultIps.join(",")));

    const st = JSON.parse(onNode("status", "--json").stdout) as NodeStatus;
    const stText = onNode("status").stdout;
    expect(stText).toContain(`${st.node}: mncni ${st.version} (build ${st.build})`);
    expect(stText).toContain(`network:      ${st.network} (${st.mode} mode)`);
    expect(st.peers.length).toBe(1);
    for (const x of st.peers) expect(stText).toMatch(row(x.podCidr, x.via ?? "-", x.dev, x.path));
    for (const [verb, v] of Object.entries(st.calls)) expect(stText).toMatch(row(verb, v.calls, v.errors, v.p50Ms.toFixed(1), v.p99Ms.toFixed(1)));

    const ipam = JSON.parse(onNode("ipam", "show", "--json").stdout) as IpamReport;
    const ipamText = onNode("ipam", "show").stdout;
    expect(ipam.ranges.length).toBeGreaterThan(0);
    for (const u of ipam.ranges) expect(ipamText).toMatch(row(u.range, u.used, u.free));

    const trace = lab(name, ["trace", "node1", "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l));
    const traceText = lab(name, ["trace", "node1"]).stdout;
    const calls = trace.filter((l) => l.call).map((l) => l.call as InvocationRecord);
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) expect(traceText).toMatch(row(c.time, c.command, `${c.podNamespace}/${c.podName}`, `${c.durationMs.toFixed(1)}ms`));
    for (const [verb, v] of Object.entries(trace.at(-1).summary as NodeStatus["calls"])) expect(traceText).toMatch(row(verb, v.calls, v.errors));

    const ex = both(["explain", "node1/pod1", "node2/pod1", "--no-probe"]);
    expect(ex.text).toContain(`${ex.json.src} -> ${ex.json.dst} udp/7777`);
    for (const h of (ex.json as Explanation).hops) expect(ex.text).toContain(`${h.place} (${h.kind})`);
    expect(ex.text).toContain(`computed: ${ex.json.outcome}`);

    const ls = both(["status"]);
    const lst = ls.json as LabStatus;
    for (const x of lst.nodes) expect(ls.text).toMatch(row(x.name, x.namespace, x.segment, x.addresses.join(","), x.podCIDRs.join(",")));
    for (const x of lst.pods) expect(ls.text).toMatch(row(`${x.k8sNamespace}/${x.node}-${x.name}`, x.node, x.namespace, x.ips.join(",")));

    const chk = both(["check"]);
    const rep = chk.json as CheckReport;
    expect(rep.ok).toBe(true);
    expect(chk.text).toContain(`PASS: ${rep.passed}/${rep.passed + rep.failed} checks`);
    for (const r of rep.results) expect(chk.text).toMatch(new RegExp(`^${r.from.replace("/", "\\/")} `, "m"));

    const list = { json: JSON.parse(labRaw(["list", "--json"]).stdout) as LabEntry[], text: labRaw(["list"]).stdout };
    const me = list.json.find((l) => l.name === name)!;
    expect(list.text).toMatch(row(me.name, me.root!, me.nodes!, me.pods!, me.mode!, me.wiring!, "complete"));
  });

  test("the agent's /metrics: CNI call durations per verb and outcome, IPAM use per range", async () => {
    const metrics = () => run(["ip", "netns", "exec", `${name}-node1`, "curl", "-sf", "http://127.0.0.1:9817/metrics"]).stdout;
    // A series by name and labels, in whatever order the renderer writes the labels.
    const value = (text: string, metric: string, labels: Record<string, string>) => {
      const line = text.split("\n").find((l) => {
        const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(l);
        if (!m || m[1] !== metric) return false;
        const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        return Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length;
      });
      return Number(line?.split(" ").at(-1) ?? NaN);
    };
    const addOk = { verb: "ADD", outcome: "ok" };
    lab(name, ["pod", "add", "node1", "pod8"]);
    let text = "";
    for (let i = 0; i < 50; i++) {
      text = metrics();
      if (value(text, "mncni_cni_call_duration_seconds_count", addOk) >= 1) break;
      await Bun.sleep(200);
    }
    const count = value(text, "mncni_cni_call_duration_seconds_count", addOk);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(value(text, "mncni_cni_call_duration_seconds_bucket", { ...addOk, le: "+Inf" })).toBe(count);
    const files = readdirSync(join(nodePaths(name, "node1").ipamDir, "mncni")).filter((f) => /^\d/.test(f));
    const range = text.split("\n").find((l) => l.startsWith("mncni_ipam_addresses_used{"))!;
    expect(range).toContain(c1);
    expect(Number(range.split(" ").at(-1))).toBe(files.length);
    expect(value(text, "mncni_ipam_addresses_free", { range: /range="([^"]*)"/.exec(range)![1]! })).toBe(253 - files.length);
    lab(name, ["pod", "remove", "node1", "pod8"]);
  });

  test("inspect finds a veth deleted behind mncni's back and a reservation file removed", () => {
    const before = JSON.parse(lab(name, ["inspect", "node2", "--json"]).stdout) as NodeAttachments;
    const [p1, p2] = before.attachments;
    run(["ip", "-n", `${name}-node2`, "link", "del", p1!.hostVeth!.name]);
    unlinkSync(join(nodePaths(name, "node2").ipamDir, "mncni", p2!.reservations[0]!));
    const gw = p2!.resultRoutes.find((r) => r.dst === "0.0.0.0/0")!.gw!;
    run(["ip", "-n", p2!.netns!.split("/").at(-1)!, "route", "del", "default"]);
    const r = lab(name, ["inspect", "node2", "--json"], { allowFail: true });
    expect(r.code).toBe(1);
    const after = JSON.parse(r.stdout) as NodeAttachments;
    const a1 = after.attachments.find((a) => a.containerId === p1!.containerId)!;
    const a2 = after.attachments.find((a) => a.containerId === p2!.containerId)!;
    expect(a1.problems).toContain(`host veth "${p1!.hostVeth!.name}" missing`);
    expect(a2.problems).toContain(`host veth "${p2!.hostVeth!.name}" has no IPAM reservation`);
    expect(a2.problems).toContain(`pod routes differ from its result: missing 0.0.0.0/0 via ${gw}`);
    // ipam show, run on the node: the removed reservation and a leaked one.
    const p = nodePaths(name, "node2");
    writeFileSync(join(p.ipamDir, "mncni", host(c2, 200)), "gone-container\r\neth0");
    const ipam = run(["ip", "netns", "exec", `${name}-node2`, ...LAB_CMD, "ipam", "show", "--json", "--cni-conf-dir", p.confDir, "--cache-dir", p.cacheDir], { allowFail: true });
    expect(ipam.code).toBe(1);
    const rep = JSON.parse(ipam.stdout) as IpamReport;
    expect(rep.leaks).toEqual([{ ip: host(c2, 200), containerId: "gone-container", ifname: "eth0" }]);
    expect(rep.unreserved.map((u) => u.containerId)).toContain(p2!.containerId);
    const files = readdirSync(join(p.ipamDir, "mncni")).filter((f) => /^\d/.test(f));
    expect(rep.ranges).toEqual([{ range: expect.stringContaining(c2), used: files.length, free: 253 - files.length }]);
    const text = lab(name, ["inspect", "node2"], { allowFail: true }).stdout;
    expect(text).toContain("problems:");
    expect(text).toContain("missing");
  });
});
}
