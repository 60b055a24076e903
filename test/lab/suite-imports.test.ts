// A test file imported by another registers its tests only the first time: bun runs all the
// files of a run in one process with one module cache, so a second file importing the same
// `*.test.ts` gets the cached module and runs none of its tests (silently: no skip, no
// failure). `make test-matrix` runs every *.matrix.test.ts in one process, so no two of them
// may import the same test file; a suite shared by several files is a function they call
// (lab-suite.ts, lab-overlay-suite.ts). Likewise `make test` runs every other test file, so
// none of those may import another test file at all (it would run in only one of the two).
// For the same reason a suite module's file-level hooks and setDefaultTimeout take effect in
// the first file that imports it only: they belong inside the suite's function.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "fixtures" ? [] : testFiles(p);
    return e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** The test/ modules a file imports (static or dynamic), as paths under test/. */
function importedModules(file: string): string[] {
  const src = readFileSync(file, "utf8");
  return [...src.matchAll(/(?:import\s*\(\s*|from\s+|import\s+)["'](\.{1,2}\/[^"']+\.ts)["']/g)].map((m) => relative(ROOT, resolve(dirname(file), m[1]!)));
}

/** The *.test.ts files a file imports (static or dynamic), as paths under test/. */
function importedTests(file: string): string[] {
  const src = readFileSync(file, "utf8");
  return [...src.matchAll(/(?:import\s*\(\s*|from\s+|import\s+)["'](\.{1,2}\/[^"']+\.test\.ts)["']/g)].map((m) => relative(ROOT, resolve(dirname(file), m[1]!)));
}

test("no two matrix files import the same test file, and no other test file imports one", () => {
  const files = testFiles(ROOT);
  const importers = new Map<string, string[]>();
  const plain: string[] = [];
  for (const f of files) {
    const name = relative(ROOT, f);
    for (const t of importedTests(f)) {
      if (name.endsWith(".matrix.test.ts")) importers.set(t, [...(importers.get(t) ?? []), name]);
      else plain.push(`${name} imports ${t}`);
    }
  }
  expect([...importers].filter(([, by]) => by.length > 1).map(([t, by]) => `${t} imported by ${by.join(", ")}`)).toEqual([]);
  expect(plain).toEqual([]);
  // The check sees imports at all (source-dir.matrix.test.ts imports e2e files).
  expect(importers.size).toBeGreaterThan(0);
});

test("no suite module imported by a matrix file calls a hook or setDefaultTimeout at file level (before its first exported function)", () => {
  const matrix = testFiles(ROOT).filter((f) => f.endsWith(".matrix.test.ts"));
  const suites = new Set(matrix.flatMap(importedModules).filter((m) => !m.endsWith(".test.ts")));
  const fileLevel: string[] = [];
  for (const m of suites) {
    const src = readFileSync(join(ROOT, m), "utf8");
    const head = src.slice(0, src.search(/^export (async )?function /m) >>> 0);
    for (const call of head.matchAll(/^(setDefaultTimeout|beforeAll|afterAll|beforeEach|afterEach)\(/gm)) fileLevel.push(`${m}: ${call[1]}`);
  }
  expect(fileLevel).toEqual([]);
  expect(suites.size).toBeGreaterThan(0);
});
