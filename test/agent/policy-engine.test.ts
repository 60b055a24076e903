// The policy engine (src/agent/policy/engine.ts) on the owned-table engine
// (src/firewall/table-engine.ts) against the kernel of a throwaway namespace, each sync in a
// process of its own (a restarted agent), checked with nft:
// - a restarted engine adopts a table it wrote without rewriting it, but repairs a
//   hand-edited chain and says so (#24.14; before, adoption went by the marker alone);
// - an element the kernel refuses (EEXIST: what two pods with one address caused, #24.5) is
//   reported and the rest of the pass is written (before, every pass failed);
// - a set nft refuses is left out with its policy, the rest programmed, the policy named (#24.6);
// - the table engine names the chain and rule of a structural failure.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { join } from "node:path";
import { createNetns, inNetns } from "../helpers/netns.ts";

const ns = createNetns("mnpeng");
afterAll(() => spawnSync(["ip", "netns", "del", ns]));

const src = (p: string) => JSON.stringify(join(import.meta.dir, "..", "..", "src", p));
const pod = (namespace: string, name: string, ip: string, labels: Record<string, string> = {}) =>
  ({ kind: "Pod", metadata: { name, namespace, labels }, spec: { nodeName: "n1", containers: [] }, status: { podIP: ip } });
const np = (namespace: string, name: string, spec: object) => ({ kind: "NetworkPolicy", metadata: { name, namespace }, spec });
const ns_ = (name: string) => ({ kind: "Namespace", metadata: { name, labels: { "kubernetes.io/metadata.name": name } } });

/**
 * One engine sync in a fresh process in the namespace (as a restarted agent does): its result.
 * Then the agent's next pass (the same state), which writes nothing but may record what the
 * first one left to record (the fingerprint of a table written whole).
 */
function sync(objects: object[]): { changes: string[]; writes: number; rejected: string[] } {
  const code = `const { PolicyEngine } = require(${src("agent/policy/engine.ts")}); const { buildClusterState } = require(${src("cluster/build-state.ts")});
    const { systemNft } = require(${src("agent/nft-ruleset.ts")});
    const e = new PolicyEngine({ nodeName: "n1", nft: systemNft });
    const state = buildClusterState(${JSON.stringify(objects)});
    const r = e.sync(state);
    const next = e.sync(state);
    if (next.writes) throw new Error("the next pass wrote: " + next.changes.join("; "));
    console.log(JSON.stringify({ changes: r.changes, writes: r.writes, rejected: r.rejected }));`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString());
}
const chain = (name: string) => inNetns(ns, ["nft", "list", "chain", "inet", "mncni-policy", name]).stdout;
const elems = (set: string) => {
  const r = inNetns(ns, ["nft", "-j", "list", "map", "inet", "mncni-policy", set]);
  return JSON.stringify(JSON.parse(r.stdout).nftables.find((o: any) => o.map)?.map.elem ?? []);
};

const base = [ns_("a"), ns_("b"), pod("a", "web", "10.1.0.2", { app: "web" }), pod("b", "db", "10.1.0.3", { app: "db" }),
  np("a", "only-web", { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }] }),
  np("b", "deny", { podSelector: {}, policyTypes: ["Ingress"] })];

test("a restarted engine adopts its table as it is, and repairs a hand-edited chain, saying so", () => {
  expect(sync(base).changes.join("\n")).toContain("create table inet mncni-policy");
  // Restart: nothing to write.
  expect(sync(base)).toEqual({ changes: [], writes: 0, rejected: [] });
  // Someone lets everything through the namespace's chain.
  const before = chain("ingress-np/b");
  inNetns(ns, ["nft", "insert", "rule", "inet", "mncni-policy", "ingress-np/b", "accept"]);
  expect(chain("ingress-np/b")).not.toBe(before);
  const r = sync(base);
  expect(r.changes.join("\n")).toMatch(/repair table inet mncni-policy: its chains differ from what was written/);
  expect(chain("ingress-np/b").replace(/handle \d+/g, "")).toBe(before.replace(/handle \d+/g, ""));
  expect(sync(base).writes).toBe(0);
});

/** Runs code in one process in the namespace with `engine` (a PolicyEngine), `state(objs)` and `nft(...args)`; prints what it returns. */
function inOneProcess(code: string): any {
  const prelude = `const { PolicyEngine } = require(${src("agent/policy/engine.ts")}); const { buildClusterState } = require(${src("cluster/build-state.ts")});
    const { compilePolicy } = require(${src("agent/policy/compile.ts")});
    const { systemNft } = require(${src("agent/nft-ruleset.ts")}); const { spawnSync } = require("bun");
    const engine = new PolicyEngine({ nodeName: "n1", nft: systemNft }); const state = (o) => buildClusterState(o);
    const nft = (...a) => { const r = spawnSync(["nft", ...a], { stderr: "pipe" }); if (r.exitCode) throw new Error(r.stderr.toString()); };`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", `${prelude}\nconsole.log(JSON.stringify((() => { ${code} })()));`], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString());
}

test("an element the kernel refuses is reported and left out; the rest of the pass is written, and it is retried", () => {
  // Someone put 10.1.0.4 in the dispatch map by hand, to another chain: adding the engine's
  // element for the pod that gets that address fails (EEXIST); a second new pod must still go in.
  const pods = [pod("b", "other", "10.1.0.4", { app: "x" }), pod("a", "third", "10.1.0.5", { app: "web" })];
  const r = inOneProcess(`
    engine.sync(state(${JSON.stringify(base)}));
    nft("add", "element", "inet", "mncni-policy", "np_ingress_4", "{ 10.1.0.4 : goto ingress-np/a }");
    const first = engine.sync(state(${JSON.stringify([...base, ...pods])}));
    const second = engine.sync(state(${JSON.stringify([...base, ...pods])}));
    nft("delete", "element", "inet", "mncni-policy", "np_ingress_4", "{ 10.1.0.4 }");
    const third = engine.sync(state(${JSON.stringify([...base, ...pods])}));
    return { first: first.rejected, second: second.rejected, third: third.rejected };`);
  expect(r.first.join("\n")).toMatch(/element "10\.1\.0\.4 : goto ingress-np\/b" of set np_ingress_4 refused by the kernel: .*EEXIST/);
  expect(r.second.length).toBe(1);
  expect(r.third).toEqual([]);
  expect(elems("np_ingress_4")).toContain("10.1.0.5");
  expect(elems("np_ingress_4")).toMatch(/10\.1\.0\.4.*ingress-np\/b/);
});

test("a policy whose set the kernel refuses is left out, the others are programmed, and it is named", () => {
  // A set of another type already has the name the new policy's peer set gets: its `add set` fails.
  const bad = np("a", "bad", { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "rare" } } }] }] });
  const good = np("a", "more", { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: {} }] }] });
  const r = inOneProcess(`
    engine.sync(state(${JSON.stringify(base)}));
    const before = new Set(compilePolicy({ state: state(${JSON.stringify([...base, good])}) }).sets.keys());
    const taken = [...compilePolicy({ state: state(${JSON.stringify([...base, good, bad])}) }).sets.keys()].find((n) => !before.has(n) && n.endsWith("_4"));
    nft("add", "set", "inet", "mncni-policy", taken, "{ type inet_service; }");
    return engine.sync(state(${JSON.stringify([...base, bad, good])})).rejected;`);
  expect(r.join("\n")).toMatch(/NetworkPolicy a\/bad is not programmed: .*@?p_\w+_4.* refused by the kernel/);
  expect(r.join("\n")).not.toContain("a/more");
  expect(chain("ingress-np/a")).toContain("np/a/more/ingress");
  expect(chain("ingress-np/a")).not.toContain("np/a/bad/ingress");
});

test("after a change written as a delta, a restarted engine adopts the table without writing (the recorded fingerprint is the kernel's)", () => {
  const more = np("a", "delta", { podSelector: { matchLabels: { app: "web" } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: "db" } } }] }] });
  const r = inOneProcess(`
    engine.sync(state(${JSON.stringify(base)}));
    return engine.sync(state(${JSON.stringify([...base, more])})).changes;`);
  expect(r.join("\n")).toContain("update table inet mncni-policy");
  expect(sync([...base, more])).toEqual({ changes: [], writes: 0, rejected: [] });
});

test("the table engine names the chain and rule of a refused structure", () => {
  const code = `const { TableEngine, StructureRejected } = require(${src("firewall/table-engine.ts")}); const { Nftables } = require(${src("kernel/index.ts")});
    const { systemNft } = require(${src("agent/nft-ruleset.ts")});
    const e = new TableEngine({ table: { family: "inet", name: "mncni-enginetest" }, apply: systemNft.apply, netlink: () => Nftables.open(), markerChain: "marker", markerPrefix: "m ", stateSet: "engine_state" });
    const s = { hash: "h1", sets: new Map(), chains: new Map([["ok", { rules: ["counter"] }], ["bad", { rules: ["counter", "jump nowhere"] }]]) };
    try { e.sync(s, new Map(), new Map()); console.log("no error"); } catch (x) { console.log(JSON.stringify(x instanceof StructureRejected ? x.rejected.map((r) => [r.kind, r.name, r.rule]) : String(x))); }`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(JSON.parse(r.stdout.toString())).toEqual([["chain", "bad", "jump nowhere"]]);
});
