// The lab's progress output: a terminal that reports no width gets whole lines; the result
// line goes to the result stream; plurals.
import { expect, test } from "bun:test";
import { plural, progress } from "../../src/lab/progress.ts";

function fakeTerminal(columns: number | undefined) {
  const writes: string[] = [];
  const stream = { isTTY: true, columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

const long = "node12: 10.224.0.23,fd00:224::23, pods 10.244.12.0/24,fd00:10:244:c::/64, starting agent wiring";

test("a terminal reporting 0 columns (or none) gets the whole progress line", () => {
  for (const columns of [0, undefined]) {
    const { stream, writes } = fakeTerminal(columns);
    progress({ stream, result: () => {} }).step(long);
    expect(writes.join("")).toContain(long);
  }
});

test("a terminal with a width gets the line cut to it", () => {
  const { stream, writes } = fakeTerminal(40);
  progress({ stream, result: () => {} }).step(long);
  const shown = writes.join("").replace("\r\x1b[K", "");
  expect(shown.length).toBe(39);
});

test("done clears the progress line and prints the result on the result stream", () => {
  const { stream, writes } = fakeTerminal(80);
  const results: string[] = [];
  const p = progress({ stream, result: (l) => results.push(l) });
  p.step("working");
  p.done("lab up");
  expect(writes.at(-1)).toBe("\r\x1b[K");
  expect(results).toHaveLength(1);
  expect(results[0]).toStartWith("lab up (");
});

test("plural", () => {
  expect([plural(1, "node"), plural(0, "pod"), plural(2, "pod")]).toEqual(["1 node", "0 pods", "2 pods"]);
});
