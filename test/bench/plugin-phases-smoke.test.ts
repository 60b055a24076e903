// Keeps bench/plugin-phases.ts working: two pods per build (the compiled binary against
// itself as the baseline), checked for a table of ADD and DEL phases with the modules' "load"
// phase in it, and for no namespace of the run left behind.
import { expect, test } from "bun:test";
import { dirname, resolve } from "node:path";
import { MNCNI_BIN, requireBinary } from "../helpers/binary.ts";
import { run } from "../helpers/netns.ts";

test("a two-pod run prints every phase of ADD and DEL for both builds, and removes its namespaces", () => {
  requireBinary();
  const before = run(["ip", "netns", "list"]).stdout;
  const p = Bun.spawnSync([process.execPath, resolve(import.meta.dir, "../../bench/plugin-phases.ts"), "--pods", "2", "--bin", MNCNI_BIN, "--baseline", dirname(MNCNI_BIN)], { stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString();
  expect(p.exitCode, p.stderr.toString()).toBe(0);
  for (const command of ["ADD", "DEL"]) expect(out).toContain(`| ${command} phase |`);
  expect(out).toMatch(/\n\| load \| \d+\.\d\d \| \d+\.\d\d \| -?\d+\.\d\d \|/);
  expect(out).toMatch(/\n\| ipam \| \d+\.\d\d \|/);
  const leftover = run(["ip", "netns", "list"]).stdout.split("\n").filter((l) => l.startsWith("mph") && !before.includes(l));
  expect(leftover).toEqual([]);
}, 120_000);
