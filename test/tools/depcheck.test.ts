// `make depcheck` (tools/depcruise/check.mjs with .dependency-cruiser.cjs): the tree passes,
// and a copy of it with an upward import, a sideways import, a circle through types, a
// bypass of agent/policy's barrel, a static import of the fast path on the plugin's path, a
// bypass of kernel/bpf's entry and a folder with no floor fails, naming each; a cruise that finds no module fails too
// (dependency-cruiser with TypeScript 7 cruised 0 modules and reported nothing).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const CHECK = join(ROOT, "tools/depcruise/check.mjs");
const BUN = join(ROOT, "node_modules/.bin/bun");
const dirs: string[] = [];

function depcheck(cwd: string, ...args: string[]) {
  const p = Bun.spawnSync([BUN, CHECK, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() };
}

/** A copy of what the check reads (src/, tsconfig, the rules), with node_modules linked. */
function copyOfTree(): string {
  const d = mkdtempSync(join(tmpdir(), "mncni-depcheck-"));
  dirs.push(d);
  cpSync(join(ROOT, "src"), join(d, "src"), { recursive: true });
  for (const f of ["tsconfig.json", ".dependency-cruiser.cjs"]) cpSync(join(ROOT, f), join(d, f));
  symlinkSync(join(ROOT, "node_modules"), join(d, "node_modules"));
  return d;
}

beforeAll(() => {
  // The check's own package (its pinned TypeScript 5), as `make depcheck` installs it.
  const p = Bun.spawnSync(["make", "-s", "-C", ROOT, "depcruise-deps"], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`make depcruise-deps: ${p.stderr.toString()}`);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("depcheck", () => {
  test("the tree keeps the layer order: no violation, and modules were cruised", () => {
    const r = depcheck(ROOT);
    expect(r.out).toContain("no dependency violations found");
    expect(Number(/\((\d+) modules/.exec(r.out)?.[1])).toBeGreaterThan(100);
    expect(r.code).toBe(0);
  });

  test("an upward, a sideways, a circular (type-only) import, a barrel bypass and a folder with no floor fail, each named", () => {
    const d = copyOfTree();
    // kernel (floor 1) naming the agent (floor 6): upward, through a type-only import.
    appendFileSync(join(d, "src/kernel/addr.ts"), `import type { AgentConfig } from "../agent/config.ts";\nexport type Upward = AgentConfig;\n`);
    // ipam and cluster share a floor: neither may import the other.
    appendFileSync(join(d, "src/ipam/usage.ts"), `import type { ClusterState } from "../cluster/types.ts";\nexport type Sideways = ClusterState;\n`);
    // Two modules that need each other only through types still form a circle.
    mkdirSync(join(d, "src/net"), { recursive: true });
    writeFileSync(join(d, "src/net/circle-a.ts"), `import type { B } from "./circle-b.ts";\nexport interface A { b?: B }\n`);
    writeFileSync(join(d, "src/net/circle-b.ts"), `import type { A } from "./circle-a.ts";\nexport interface B { a?: A }\n`);
    // A value from agent/policy/ not through its index.ts.
    appendFileSync(join(d, "src/agent/agent.ts"), `import { PolicyEngine as Bypass } from "./policy/engine.ts";\nexport const bypass = Bypass;\n`);
    // A folder given no floor is refused, and so is importing it.
    mkdirSync(join(d, "src/newfloor"));
    writeFileSync(join(d, "src/newfloor/x.ts"), `import { familyOf } from "../net/ip.ts";\nexport const f = familyOf;\n`);
    appendFileSync(join(d, "src/cli/output.ts"), `import { f as unplaced } from "../newfloor/x.ts";\nexport const g = unplaced;\n`);
    // The plugin's path importing the fast path's modules statically (only a dynamic import may).
    appendFileSync(join(d, "src/plugin/attach.ts"), `import { fastPathDir as eager } from "./fast-path.ts";\nexport const eagerFastPath = eager;\n`);
    // A value from kernel/bpf/ not through its entry.
    appendFileSync(join(d, "src/obs/status.ts"), `import { Asm as BpfBypass } from "../kernel/bpf/asm.ts";\nexport const bpfBypass = BpfBypass;\n`);
    const r = depcheck(d);
    expect(r.out).toContain("plugin-path-no-static-bpf: src/plugin/attach.ts → src/plugin/fast-path.ts");
    expect(r.out).toContain("bpf-one-way-in: src/obs/status.ts → src/kernel/bpf/asm.ts");
    expect(r.out).toContain("unplaced: src/newfloor/x.ts → src/net/ip.ts");
    expect(r.out).toContain("to-unplaced: src/cli/output.ts → src/newfloor/x.ts");
    expect(r.out).toContain("upward-from-kernel+kube: src/kernel/addr.ts → src/agent/config.ts");
    expect(r.out).toContain("sideways-from-ipam: src/ipam/usage.ts → src/cluster/types.ts");
    expect(r.out).toMatch(/no-circular: src\/net\/circle-[ab]\.ts → /);
    expect(r.out).toContain("policy-one-way-in: src/agent/agent.ts → src/agent/policy/engine.ts");
    expect(r.out).not.toContain("not-to-unresolvable");
    expect(r.code).not.toBe(0);
  }, 60_000);

  test("a cruise that finds no module fails instead of passing", () => {
    const d = copyOfTree();
    mkdirSync(join(d, "empty"));
    const r = depcheck(d, ".dependency-cruiser.cjs", "empty");
    expect(r.out).toContain("cruised no module");
    expect(r.code).toBe(1);
  });
});
