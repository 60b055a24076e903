// `lab up --fast-path on` for every lab a test file brings up, through MNCNI_LAB_FAST_PATH
// (test/lab/lab-cli.ts adds it to their `lab up`): set only while that file's tests run, as
// the other matrix files share the process. Every lab still up goes at the end of the file: a
// suite module's own file-level afterAll (insight-suite.ts) is registered only in the first
// file of the process that imports it.
import { afterAll, beforeAll } from "bun:test";
import { downAll } from "./lab-cli.ts";

export function fastPathLabs(): void {
  const before = process.env.MNCNI_LAB_FAST_PATH;
  beforeAll(() => {
    process.env.MNCNI_LAB_FAST_PATH = "on";
  });
  afterAll(downAll);
  afterAll(() => {
    if (before === undefined) delete process.env.MNCNI_LAB_FAST_PATH;
    else process.env.MNCNI_LAB_FAST_PATH = before;
  });
}
