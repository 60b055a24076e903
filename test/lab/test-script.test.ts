// scripts/test.sh, the suite's runner: a run that ends without bun's summary is a failure.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { run } from "../helpers/netns.ts";

const script = resolve(import.meta.dir, "../../scripts/test.sh");

test("a run with no summary (a test exited the process early) fails with a clear line", () => {
  const r = run(["bash", script, "./test/lab/fixtures/exits-early.ts"], { allowFail: true });
  expect(r.code).not.toBe(0);
  expect(r.stdout).toContain("no test summary from bun");
  expect(r.stdout).not.toMatch(/^0 passed, 0 failed$/m);
});

test("a normal run still ends with the summary line", () => {
  const r = run(["bash", script, "./test/lab/fixtures/passes.ts"], { allowFail: true });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^1 passed, 0 failed, 0 skipped$/m);
});

// `make test` leaves the *.matrix.test.ts files out, `make test-matrix` runs only them, found by name.
const root = mkdtempSync("/tmp/mncni-test-script-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
const file = (path: string, name: string) => {
  mkdirSync(join(root, path), { recursive: true });
  writeFileSync(join(root, path, name), `import { expect, test } from "bun:test";\ntest(${JSON.stringify(name)}, () => expect(1).toBe(1));\n`);
};
file("lab", "plain.test.ts");
file("lab", "modes.matrix.test.ts");
file("containerd/deep", "runtimes.matrix.test.ts");

test("the default run leaves matrix files out; --matrix runs only them; both list the slowest files", () => {
  const plain = run(["bash", script], { allowFail: true, env: { ...(process.env as Record<string, string>), TEST_ROOT: root } });
  expect(plain.code).toBe(0);
  expect(plain.stdout).toMatch(/^1 passed, 0 failed, 0 skipped$/m);
  expect(plain.stdout).toContain("plain.test.ts");
  expect(plain.stdout).not.toContain("matrix.test.ts");
  const matrix = run(["bash", script, "--matrix"], { allowFail: true, env: { ...(process.env as Record<string, string>), TEST_ROOT: root } });
  expect(matrix.code).toBe(0);
  expect(matrix.stdout).toMatch(/^2 passed, 0 failed, 0 skipped$/m);
  expect(matrix.stdout).toContain("modes.matrix.test.ts");
  expect(matrix.stdout).toContain("runtimes.matrix.test.ts");
  expect(matrix.stdout).not.toContain("plain.test.ts");
  expect(matrix.stdout).toMatch(/slowest test files \(s\):\n\s+\d+\.\d\s+\S+matrix\.test\.ts/);
});

// A failed file runs once more: a test that then passes is counted as passed but named FLAKY;
// one that fails again fails the run, and is named FAILED at the end (where CI's tail shows it).
test("a test that fails once then passes is named FLAKY; one that fails twice is named FAILED", () => {
  const env = { ...(process.env as Record<string, string>), FLAKY_MARK: join(root, "flaky-mark") };
  const r = run(["bash", script, "./test/lab/fixtures/flaky.ts", "./test/lab/fixtures/fails.ts"], { allowFail: true, env });
  expect(r.code).not.toBe(0);
  const tail = r.stdout.trimEnd().split("\n").slice(-3);
  expect(tail).toEqual([
    "FLAKY: test/lab/fixtures/flaky.ts > fails once",
    "FAILED: test/lab/fixtures/fails.ts > always fails",
    "2 passed, 1 failed, 0 skipped",
  ]);
  expect(r.stdout).toContain("re-running the 2 file(s) with a failed test, once");
});

test("a flaky test alone leaves the run green; TEST_RERUN=0 does not re-run", () => {
  const env = { ...(process.env as Record<string, string>), FLAKY_MARK: join(root, "flaky-mark-2") };
  const off = run(["bash", script, "./test/lab/fixtures/flaky.ts"], { allowFail: true, env: { ...env, TEST_RERUN: "0" } });
  expect(off.code).not.toBe(0);
  expect(off.stdout).not.toContain("re-running");
  expect(off.stdout.trimEnd().split("\n").slice(-2)).toEqual(["FAILED: test/lab/fixtures/flaky.ts > fails once", "1 passed, 1 failed, 0 skipped"]);
  rmSync(env.FLAKY_MARK, { force: true });
  const on = run(["bash", script, "./test/lab/fixtures/flaky.ts"], { allowFail: true, env });
  expect(on.code).toBe(0);
  expect(on.stdout.trimEnd().split("\n").slice(-2)).toEqual(["FLAKY: test/lab/fixtures/flaky.ts > fails once", "2 passed, 0 failed, 0 skipped"]);
});

test("a failed test whose re-run dies before reporting is named FAILED, not FLAKY", () => {
  const env = { ...(process.env as Record<string, string>), DIES_MARK: join(root, "dies-mark") };
  const r = run(["bash", script, "./test/lab/fixtures/dies-on-rerun.ts"], { allowFail: true, env });
  expect(r.code).not.toBe(0);
  expect(r.stdout).toContain("re-running the 1 file(s) with a failed test, once");
  expect(r.stdout).not.toContain("FLAKY:");
  expect(r.stdout.trimEnd().split("\n").slice(-3)).toEqual([
    "FAILED: test/lab/fixtures/dies-on-rerun.ts > fails, then its file dies",
    "FAILED: test/lab/fixtures/dies-on-rerun.ts > (the re-run failed, exit 3)",
    "0 passed, 1 failed, 0 skipped",
  ]);
});
