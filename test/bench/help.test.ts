// Every benchmark answers --help with its usage and exits at once: one that does not starts a
// real run instead (minutes of load, labs, namespaces, containerd), which is what --help was
// meant to avoid. The check: exit 0 within seconds, and something printed.
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";

const dir = resolve(import.meta.dir, "../../bench");
const benches = readdirSync(dir).filter((f) => f.endsWith(".ts") && !["help.ts", "cni-harness.ts", "shell.ts", "busy-cpus.ts"].includes(f));

test("there are benchmarks to check", () => expect(benches.length).toBeGreaterThan(20));

for (const f of benches) {
  test(`bench/${f} --help prints its usage and exits`, () => {
    const p = Bun.spawnSync(["timeout", "20", process.execPath, resolve(dir, f), "--help"], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode, p.stderr.toString()).toBe(0);
    expect(p.stdout.toString().trim().length).toBeGreaterThan(20);
  });
}
