// sys/paths.ts against node:path (posix), the library it stands in for on the CNI call's path.
import { describe, expect, test } from "bun:test";
import { posix } from "node:path";
import { dirname, join, normalize, resolve } from "../../src/sys/paths.ts";

const PATHS = ["", ".", "..", "/", "//", "a", "a/", "/a", "/a/", "a//b", "/a/./b", "/a/../b", "a/../..", "../a", "/..", "/../a", "a/b/../../..", "/var/lib/cni/networks/x", "./x/y/", "a/.", "/a/b/.."];

describe("paths, as node:path/posix gives them", () => {
  test("normalize", () => {
    for (const p of PATHS) if (p !== "") expect([p, normalize(p)]).toEqual([p, posix.normalize(p).replace(/(.)\/$/, "$1")]);
  });
  test("join", () => {
    for (const a of PATHS) for (const b of ["x", "../y", "", "/z", "x/"]) expect([a, b, join(a, b)]).toEqual([a, b, posix.join(a, b).replace(/(.)\/$/, "$1")]);
    expect(join()).toBe(posix.join());
  });
  test("resolve", () => {
    for (const a of PATHS) for (const b of ["x", "../y", "", "/z"]) expect([a, b, resolve(a, b)]).toEqual([a, b, posix.resolve(a, b)]);
  });
  test("dirname", () => {
    for (const p of PATHS) expect([p, dirname(p)]).toEqual([p, posix.dirname(p)]);
  });
});
