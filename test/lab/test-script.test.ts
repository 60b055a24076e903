// scripts/test.sh, the suite's runner: a run that ends without bun's summary is a failure.
import { expect, test } from "bun:test";
import { resolve } from "node:path";
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
