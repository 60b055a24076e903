// The agent's side of the policy hold against the kernel, in a throwaway namespace: releasing
// addresses of which one is already gone (the plugin's DEL released its pod's meanwhile)
// releases the others and is not an error.
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { join } from "node:path";
import { createNetns, inNetns } from "../helpers/netns.ts";

const ns = createNetns("mnhold");
afterAll(() => spawnSync(["ip", "netns", "del", ns]));

const held = () => {
  const r = inNetns(ns, ["nft", "-j", "list", "set", "inet", "mncni-hold", "held_4"]);
  return (JSON.parse(r.stdout).nftables.find((o: any) => o.set).set.elem ?? []) as string[];
};

test("release of held addresses tolerates one that is gone", () => {
  const script = join(import.meta.dir, "..", "..", "src", "agent", "policy", "hold.ts");
  inNetns(ns, ["nft", "-f", "-"], { stdin: `${require(script).HOLD_TABLE_SCRIPT}add element inet mncni-hold held_4 { 10.9.0.1, 10.9.0.2 }\n` });
  expect(held().sort()).toEqual(["10.9.0.1", "10.9.0.2"]);
  const code = `const { systemHold } = require(${JSON.stringify(script)}); systemHold.release(["10.9.0.1", "10.9.0.3", "10.9.0.2"]);`;
  const r = spawnSync(["ip", "netns", "exec", ns, process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  expect(held()).toEqual([]);
});
