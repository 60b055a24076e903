// The hold table (src/firewall/hold.ts) against the kernel, in a throwaway namespace, through
// the agent's side (src/agent/policy/hold.ts) and checked with nft: the table is created once
// and an existing one (an older agent's, without a layout comment) is kept with its elements;
// releasing addresses of which one is already gone (the plugin's DEL released its pod's
// meanwhile) releases the others and is not an error.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { join } from "node:path";
import { createNetns, inNetns } from "../helpers/netns.ts";

const ns = createNetns("mnhold");
afterAll(() => spawnSync(["ip", "netns", "del", ns]));

const src = (p: string) => JSON.stringify(join(import.meta.dir, "..", "..", "src", p));
const held = () => {
  const r = inNetns(ns, ["nft", "-j", "list", "set", "inet", "mncni-hold", "held_4"]);
  return (JSON.parse(r.stdout).nftables.find((o: any) => o.set).set.elem ?? []) as string[];
};
/** Runs code in the namespace with systemHold and an apply that runs nft; prints its result as JSON. */
function agentSide(code: string): unknown {
  const prelude = `const { systemHold } = require(${src("agent/policy/hold.ts")}); const { runNft } = require(${src("sys/nft.ts")});
    const apply = (s, what) => { const r = runNft(["-f", "-"], s); if (r.code) throw new Error(what + ": " + r.stderr); };`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", `${prelude} console.log(JSON.stringify(${code}) ?? "null");`], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  return JSON.parse(r.stdout.toString());
}

test("the table is created once; one an older agent wrote is kept with its elements", () => {
  inNetns(ns, ["nft", "-f", "-"], { stdin: `table inet mncni-hold {\n set held_4 { type ipv4_addr; }\n set held_6 { type ipv6_addr; }\n}\nadd element inet mncni-hold held_4 { 10.9.0.9 }\n` });
  expect(agentSide(`systemHold.ensure(apply)`)).toBe(false);
  expect(held()).toEqual(["10.9.0.9"]);
  inNetns(ns, ["nft", "delete", "table", "inet", "mncni-hold"]);
  expect(agentSide(`systemHold.ensure(apply)`)).toBe(true);
  expect(agentSide(`systemHold.ensure(apply)`)).toBe(false);
  const rules = inNetns(ns, ["nft", "list", "chain", "inet", "mncni-hold", "forward"]).stdout;
  expect(rules).toContain("hook forward");
  expect(rules).toContain("ip saddr @held_4");
});

test("release of held addresses tolerates one that is gone", () => {
  inNetns(ns, ["nft", "add", "element", "inet", "mncni-hold", "held_4", "{ 10.9.0.1, 10.9.0.2 }"]);
  expect(held().sort()).toEqual(["10.9.0.1", "10.9.0.2"]);
  agentSide(`systemHold.release(["10.9.0.1", "10.9.0.3", "10.9.0.2"])`);
  expect(held()).toEqual([]);
  expect(agentSide(`systemHold.held()`)).toEqual([]);
});
