// `make lab` ends by saying how to open the lab's web page (make -n: nothing is built or run).
import { expect, test } from "bun:test";
import { resolve } from "node:path";

test("make lab prints how to open the web page of that lab", () => {
  const p = Bun.spawnSync(["make", "-n", "-C", resolve(import.meta.dir, "../.."), "lab", "NAME=uihint"], { stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString();
  expect(out).toContain("lab ui --name uihint");
  expect(out).toContain("http://127.0.0.1:9819/");
});
