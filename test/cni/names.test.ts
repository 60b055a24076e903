// safeJoin: untrusted names (container ID, interface, network) can never form a path outside
// the state directory, whatever passed (or slipped past) the syntax checks.
import { describe, expect, test } from "bun:test";
import { containerIdProblem, ifnameProblem, networkNameProblem, safeJoin } from "../../src/cni/names.ts";

const BASE = "/var/lib/cni/networks";

describe("safeJoin", () => {
  test("joins plain names under the base", () => {
    expect(safeJoin(BASE, "pods", "10.244.1.5")).toBe(`${BASE}/pods/10.244.1.5`);
    expect(safeJoin(BASE, "fd00:10::5")).toBe(`${BASE}/fd00:10::5`);
    expect(safeJoin(`${BASE}/`, "..hidden", "a..b")).toBe(`${BASE}/..hidden/a..b`);
  });
  test.each([[".."], ["."], [""], ["../etc"], ["a/../../etc"], ["/etc/passwd"], ["a/b"], ["x\0y"], ["..\0"]])("rejects %p", (part) => {
    expect(() => safeJoin(BASE, "pods", part)).toThrow(/cannot use/);
    expect(() => safeJoin(BASE, part)).toThrow(/cannot use/);
  });
  test("the error names the value and the base", () => {
    expect(() => safeJoin(BASE, "..")).toThrow(`cannot use ".." as a file name: it could escape ${BASE}`);
  });
  test("a relative base stays contained too", () => {
    expect(() => safeJoin("state", "..")).toThrow();
    expect(safeJoin("state", "x").endsWith("/state/x")).toBe(true);
  });
});

test("everything the syntax checks accept is safe to join", () => {
  const samples = ["a", "eth0", "-eth0", "net1.100", "..a", "a..", "k8s_x.y-z", "ä".repeat(7)];
  for (const s of samples) {
    if (!containerIdProblem(s) || !ifnameProblem(s) || !networkNameProblem(s)) expect(safeJoin(BASE, s)).toBe(`${BASE}/${s}`);
  }
  for (const s of [".", "..", "a/b", "/"]) {
    expect(containerIdProblem(s)).toBeDefined();
    expect(ifnameProblem(s)).toBeDefined();
    expect(networkNameProblem(s)).toBeDefined();
  }
});
