// In `make test-matrix`: it brings up two labs (about a minute), and what it keeps working is a
// benchmark, not a feature; bench/dataplane.ts's own smoke stays in `make test`.
// Keeps bench/dataplane-stack.ts working: a tiny run (one round, 1 s tests) of the flows that
// take the stack, in its two labs (fast path on and off) through the compiled binary, checked
// for real measurements of every flow in both labs and for nothing left behind.
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { MNCNI_BIN, requireBinary } from "../helpers/binary.ts";
import { run } from "../helpers/netns.ts";

test("a one-round run measures every flow with the fast path on and off, and removes its labs", () => {
  requireBinary();
  const p = Bun.spawnSync([process.execPath, resolve(import.meta.dir, "../../bench/dataplane-stack.ts"), "--rounds", "1", "--duration", "1", "--json"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, MNCNI_BIN },
  });
  const err = p.stderr.toString();
  expect(p.exitCode, err).toBe(0);
  const id = /lab (ds[0-9a-z]+)on: up/.exec(err)?.[1];
  expect(id).toBeDefined();
  const out = JSON.parse(p.stdout.toString());
  expect(out.rows.map((r: any) => r.flow)).toEqual(["policy", "service", "egress", "plain"]);
  for (const r of out.rows) {
    for (const side of [r.samples.on, r.samples.off]) {
      expect(side.gbps).toHaveLength(1);
      expect(side.gbps[0]).toBeGreaterThan(0);
      expect(side.rr[0]).toBeGreaterThan(0);
    }
  }
  expect(run(["ip", "netns", "list"]).stdout.split("\n").filter((l) => l.startsWith(id!))).toEqual([]);
  expect(run(["pgrep", "-f", `${id}`], { allowFail: true }).stdout.trim()).toBe("");
}, 600_000);
