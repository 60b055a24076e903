// The agent for real: node namespaces on a shared bridge, the compiled agent running inside
// each, pods added through the plugin it installed (as a runtime does), checked with `ip -j`,
// `nft -j`, the files it writes, /readyz and /metrics, and real traffic between pods and to
// an external host. --uninstall then runs against the plugin's own state.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { requireBinary } from "../helpers/binary.ts";
import { inNetns, ipJson, run } from "../helpers/netns.ts";
import { waitListening } from "../plugin/fixture.ts";
import {
  BUN, EXT_IP, addPod, agentArgs, buildCluster, destroyCluster, removeNode, startAgent, stopAgent, waitFor, writeNode, type TestCluster, type TestNode,
} from "./lab.ts";

const WHOAMI = join(import.meta.dir, "whoami.ts");
let c: TestCluster;
let n1: TestNode;
let n2: TestNode;
const servers: Subprocess[] = [];

type R = { dst: string; gateway?: string; protocol?: string };
const mncniRoutes = (n: TestNode) => ipJson<R[]>(n.ns, ["route", "show", "proto", "77"]).map((r) => `${r.dst} via ${r.gateway}`).sort();
const curl = (n: TestNode, path: string, headers: string[] = []) =>
  inNetns(n.ns, ["curl", "-s", ...headers.flatMap((h) => ["-H", h]), "-w", "\n%{http_code}", `http://127.0.0.1:9817${path}`], { allowFail: true }).stdout;
const same = (a: string, b: string) => run(["cmp", "-s", a, b], { allowFail: true }).code === 0;
const DIST = resolve(import.meta.dir, "../../dist");
const nftTables = (n: TestNode) =>
  JSON.parse(inNetns(n.ns, ["nft", "-j", "list", "tables"]).stdout).nftables.filter((o: any) => o.table).map((o: any) => `${o.table.family} ${o.table.name}`).sort();
const metric = (n: TestNode, name: string) => Number(curl(n, "/metrics").match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
const ask = (from: string, host: string) => inNetns(from, [BUN, WHOAMI, "ask", host, "7777"], { allowFail: true }).stdout.trim();

// These tests are host-gw's (a peer off the segment is a warning, not a tunnel); test/agent/overlay.test.ts has auto's and VXLAN's.
const HOST_GW = ["--routing", "host-gw"];

beforeAll(async () => {
  requireBinary();
  c = buildCluster(3);
  [n1, n2] = c.nodes as [TestNode, TestNode];
  // n3 runs no agent: it is the peer the tests add and remove.
  removeNode(c, "n3");
  // A foreign route inside the pod network, and one elsewhere: the agents must never touch them.
  run(["ip", "-n", n1.ns, "route", "add", "10.244.77.0/24", "via", "10.99.0.13", "proto", "static"]);
  run(["ip", "-n", n1.ns, "route", "add", "10.250.0.0/24", "via", "10.99.0.13"]);
  for (const n of [n1, n2]) startAgent(c, n, HOST_GW);
  await waitFor("both agents to write their conflist", () => [n1, n2].every((n) => existsSync(join(n.dir, "conf/10-mncni.conflist"))));
  // Pods exist only once the node has a CNI config, as on a real node.
  for (const n of [n1, n2]) await addPod(n);
  for (const ns of [n2.podNs, c.ext]) {
    servers.push(spawn(["ip", "netns", "exec", ns, BUN, WHOAMI, "serve", "7777"], { stdout: "ignore", stderr: "ignore" }));
    await waitListening(ns, 7777, 10_000);
  }
}, 60_000);

afterAll(async () => {
  for (const p of servers) p.kill("SIGKILL");
  await destroyCluster(c);
});

describe("mncni agent in node namespaces", () => {
  test("converges: host-gw routes, conflist, the real plugin installed, forwarding, ready", async () => {
    await waitFor("routes", () => mncniRoutes(n1).includes("10.244.2.0/24 via 10.99.0.12") && mncniRoutes(n2).includes("10.244.1.0/24 via 10.99.0.11"));
    expect(mncniRoutes(n1)).toEqual(["10.244.2.0/24 via 10.99.0.12"]);
    const conf = JSON.parse(readFileSync(join(n1.dir, "conf/10-mncni.conflist"), "utf8"));
    expect(conf.plugins[0].ipam.ranges).toEqual([[{ subnet: "10.244.1.0/24" }]]);
    expect(conf.plugins[0].agentSocket).toBe(join(n1.dir, "run/cni.sock"));
    expect(same(join(n1.dir, "bin/mncni"), join(DIST, "mncni-forward"))).toBe(true);
    for (const b of ["mncni-core", "mncni-ipam"]) expect(same(join(n1.dir, "bin", b), join(DIST, "mncni"))).toBe(true);
    expect(inNetns(n1.ns, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
    await waitFor("readyz", () => curl(n1, "/readyz").endsWith("200"));
    expect(curl(n1, "/readyz")).toBe("ready\n\n200");
    expect(curl(n1, "/healthz")).toBe("ok\n\n200");
    expect(metric(n1, "mncni_agent_nodes_known")).toBe(2);
    expect(metric(n1, "mncni_agent_routes_programmed")).toBe(1);
    // The pod's ADD went through the forwarder to this agent.
    expect(metric(n1, "mncni_agent_cni_calls_served_total")).toBeGreaterThanOrEqual(1);
    // The pod is the plugin's: on the bridge, inside the node's CIDR, guarded by anti-spoofing.
    expect(n1.podIP).toMatch(/^10\.244\.1\.\d+$/);
    expect(ipJson<{ ifname: string; master?: string }[]>(n1.ns, ["link", "show", "master", "cbr0"])).toHaveLength(1);
    expect(nftTables(n1)).toContain("inet mncni");
    expect(nftTables(n1).some((t: string) => t.startsWith("bridge mncni"))).toBe(true);
    // A log file is not a terminal: JSON lines.
    const log = readFileSync(join(n1.dir, "agent.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(log.some((l) => l.msg === "add route 10.244.2.0/24 via 10.99.0.12 (node n2)")).toBe(true);
  });

  test("pod to pod across nodes keeps the pod address; pod to outside is masqueraded to the node address", async () => {
    expect(ask(n1.podNs, n2.podIP)).toBe(n1.podIP);
    expect(ask(n1.podNs, EXT_IP)).toBe(n1.ip);
    const nat = JSON.parse(inNetns(n1.ns, ["nft", "-j", "list", "chain", "inet", "mncni", "postrouting"]).stdout);
    const rule = nat.nftables.find((o: any) => o.rule?.comment === "pod egress").rule;
    expect(rule.expr.find((e: any) => e.counter).counter.packets).toBeGreaterThan(0);
  });

  test("node add and remove converge; a not-on-link peer is a warning naming it (still ready, the others routed); foreign routes survive", async () => {
    writeNode(c, "n3", "10.99.0.13", ["10.244.3.0/24"]);
    writeNode(c, "n4", "10.98.0.4", ["10.244.4.0/24"]);
    await waitFor("n3's route", () => mncniRoutes(n1).includes("10.244.3.0/24 via 10.99.0.13") && mncniRoutes(n2).includes("10.244.3.0/24 via 10.99.0.13"));
    await waitFor("the n4 warning in metrics", () => metric(n1, "mncni_agent_warnings") === 1);
    // One unreachable peer takes no node out: n1 stays ready, routes to the peers it reaches, and says why n4 is not served.
    expect(mncniRoutes(n1)).toEqual(["10.244.2.0/24 via 10.99.0.12", "10.244.3.0/24 via 10.99.0.13"]);
    expect(metric(n1, "mncni_agent_problems")).toBe(0);
    expect(metric(n1, "mncni_agent_ready")).toBe(1);
    // /readyz says so: as text, and as JSON when asked for.
    const text = curl(n1, "/readyz");
    expect(text).toStartWith("ready\nwarnings:\n- ");
    expect(text).toContain('of node "n4" via "10.98.0.4": not on-link');
    expect(text).toEndWith("200");
    const json = JSON.parse(curl(n1, "/readyz", ["Accept: application/json"]).replace(/\n\d+$/, ""));
    expect(json.ready).toBe(true);
    expect(json.reasons).toEqual([]);
    expect(json.warnings).toHaveLength(1);
    expect(json.warnings[0]).toContain('"n4"');
    expect(readFileSync(join(n1.dir, "agent.log"), "utf8")).toContain('of node \\"n4\\" via \\"10.98.0.4\\": not on-link');
    removeNode(c, "n3");
    removeNode(c, "n4");
    await waitFor("n3's route to go", () => !mncniRoutes(n1).some((r) => r.startsWith("10.244.3.")) && !mncniRoutes(n2).some((r) => r.startsWith("10.244.3.")));
    await waitFor("the warning to clear", () => curl(n1, "/readyz") === "ready\n\n200");
    const all = ipJson<R[]>(n1.ns, ["route", "show"]).map((r) => `${r.dst} via ${r.gateway}`);
    expect(all).toContain("10.244.77.0/24 via 10.99.0.13");
    expect(all).toContain("10.250.0.0/24 via 10.99.0.13");
  });

  test("malformed manifests are reported and skipped", async () => {
    const bad = join(c.manifests, "broken.yaml");
    await Bun.write(bad, "kind: Node\nmetadata: [\n");
    await waitFor("invalid manifest metric", () => metric(n1, "mncni_agent_invalid_manifests") === 1);
    expect(mncniRoutes(n1)).toEqual(["10.244.2.0/24 via 10.99.0.12"]);
    run(["rm", bad]);
    await waitFor("invalid manifest metric to clear", () => metric(n1, "mncni_agent_invalid_manifests") === 0);
  });

  test("a foreign forward chain with policy drop does not cut pod traffic", async () => {
    inNetns(n2.ns, ["nft", "add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }"]);
    await waitFor("accept rules in the foreign chain", () => inNetns(n2.ns, ["nft", "-j", "list", "chain", "ip", "filter", "FORWARD"]).stdout.includes("mncni-agent forward-accept"));
    expect(ask(n1.podNs, n2.podIP)).toBe(n1.podIP);
  });

  test("restarting the agents interrupts neither a ping nor a TCP stream, and writes nothing", async () => {
    const iperfSrv = spawn(["ip", "netns", "exec", n2.podNs, "iperf3", "-s", "-1", "-p", "5201"], { stdout: "ignore", stderr: "ignore" });
    await waitListening(n2.podNs, 5201, 10_000);
    const ping = spawn(["ip", "netns", "exec", n1.podNs, "ping", "-i", "0.02", "-c", "150", "-W", "1", n2.podIP], { stdout: "pipe" });
    const iperf = spawn(["ip", "netns", "exec", n1.podNs, "iperf3", "-c", n2.podIP, "-p", "5201", "-t", "3", "-b", "20M", "-J"], { stdout: "pipe", stderr: "pipe" });
    // The restart happens while the stream is up.
    await waitFor("the TCP stream", () => inNetns(n2.podNs, ["ss", "-Htn", "state", "established", "sport = :5201"]).stdout.trim() !== "");
    for (const n of [n1, n2]) await stopAgent(n);
    expect(mncniRoutes(n1)).toEqual(["10.244.2.0/24 via 10.99.0.12"]);
    for (const n of [n1, n2]) startAgent(c, n, HOST_GW);
    await waitFor("agents to answer again", () => [n1, n2].every((n) => curl(n, "/readyz").endsWith("200")));
    expect([n1, n2].map((n) => metric(n, "mncni_agent_kernel_writes_total"))).toEqual([0, 0]);
    const pingOut = await new Response(ping.stdout).text();
    expect(await ping.exited).toBe(0);
    expect(pingOut).toContain("150 received");
    const iperfOut = await new Response(iperf.stdout).text();
    expect(await iperf.exited).toBe(0);
    expect(JSON.parse(iperfOut).end.sum_received.bytes).toBeGreaterThan(1_000_000);
    iperfSrv.kill("SIGKILL");
  }, 20_000);

  test("--uninstall finds the run's directories, keeps a bridge with pods unless --force, leaves only what is not mncni's", async () => {
    await stopAgent(n2);
    run(["ip", "-n", n2.ns, "route", "add", "10.244.88.0/24", "via", "10.99.0.11", "proto", "static"]);
    // The plugin's state on n2 before: its pod on cbr0, anti-spoofing and masquerade tables, protocol-77 routes.
    expect(ipJson<unknown[]>(n2.ns, ["link", "show", "master", "cbr0"])).toHaveLength(1);
    expect(nftTables(n2).filter((t: string) => t.includes("mncni")).length).toBeGreaterThanOrEqual(2);
    expect(mncniRoutes(n2)).toEqual(["10.244.1.0/24 via 10.99.0.11"]);
    // Only the state file (not the directories of the run) is given; text logs to stderr on request.
    const uninstallArgs = ["ip", "netns", "exec", n2.ns, requireBinary(), "agent", "--uninstall", "--state-file", join(n2.dir, "run/agent-run.json"), "--log-format", "text"];
    const first = run(uninstallArgs, { allowFail: true });
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/^\S+Z WARN  not removed: bridge cbr0: 1 pod interface\(s\) still attached \(\S+\); delete the pods first, or pass --force/m);
    expect(ipJson<{ ifname: string }[]>(n2.ns, ["link", "show"]).map((l) => l.ifname)).toContain("cbr0");
    expect(mncniRoutes(n2)).toEqual([]);
    expect(nftTables(n2)).toEqual(["ip filter"]);
    for (const f of ["conf/10-mncni.conflist", "bin/mncni", "bin/mncni-core", "bin/mncni-ipam"]) expect(existsSync(join(n2.dir, f))).toBe(false);
    expect(existsSync(join(n2.dir, "run/agent-run.json"))).toBe(true);

    const forced = run([...uninstallArgs, "--force"], { allowFail: true });
    expect(forced.stderr).toContain("WARN  removed bridge cbr0 with 1 pod interface(s) attached");
    expect(forced.code).toBe(0);
    expect(ipJson<{ ifname: string }[]>(n2.ns, ["link", "show"]).map((l) => l.ifname)).not.toContain("cbr0");
    expect(existsSync(join(n2.dir, "run/agent-run.json"))).toBe(false);
    expect(ipJson<R[]>(n2.ns, ["route", "show", "10.244.88.0/24"])).toHaveLength(1);
    expect(inNetns(n2.ns, ["nft", "-j", "list", "chain", "ip", "filter", "FORWARD"]).stdout).not.toContain("mncni");
    // The other node is untouched.
    expect(mncniRoutes(n1)).toEqual(["10.244.2.0/24 via 10.99.0.12"]);
    expect(ipJson<unknown[]>(n1.ns, ["link", "show", "master", "cbr0"])).toHaveLength(1);
  });

  test("logs are readable lines on a terminal, JSON otherwise", () => {
    // `script` gives the agent a pseudo-terminal as stderr; --help-free, quick: an uninstall of nothing.
    const argv = ["ip", "netns", "exec", n2.ns, requireBinary(), "agent", "--uninstall", "--state-file", join(n2.dir, "none.json"), "--cni-conf-dir", join(n2.dir, "none"), "--cni-bin-dir", join(n2.dir, "none"), "--bridge", "nobr0"];
    const tty = run(["script", "-qec", argv.join(" "), "/dev/null"], { allowFail: true }).stdout;
    expect(tty).toMatch(/^\S+Z INFO  uninstall finished component=agent removed=\d+ kept=0 errors=0\r?$/m);
    const pipe = run(argv, { allowFail: true }).stderr.trim().split("\n").map((l) => JSON.parse(l));
    expect(pipe.at(-1)).toMatchObject({ level: "info", msg: "uninstall finished", component: "agent", kept: 0, errors: 0 });
  });
});
