import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ManifestsDirSource, openSource } from "../../src/cluster/index.ts";

const dir = mkdtempSync(`/tmp/mna-cluster-${process.pid}-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nodeYaml = (name: string, cidr: string) => `kind: Node\nmetadata: {name: ${name}}\nspec: {podCIDRs: [${cidr}]}\n`;

describe("ManifestsDirSource", () => {
  test("reads yaml/yml/json, skips dotfiles and other files, re-reads changes, reports bad files", () => {
    writeFileSync(join(dir, "a.yaml"), nodeYaml("a", "10.244.1.0/24"));
    writeFileSync(join(dir, "b.json"), JSON.stringify({ kind: "Node", metadata: { name: "b" } }));
    writeFileSync(join(dir, ".c.yaml.tmp"), nodeYaml("c", "10.244.3.0/24"));
    writeFileSync(join(dir, "README.md"), "not a manifest");
    writeFileSync(join(dir, "bad.yml"), "kind: [");
    const src = new ManifestsDirSource(dir);
    let s = src.refresh();
    expect([...s.nodes.keys()].sort()).toEqual(["a", "b"]);
    expect(s.invalid).toHaveLength(1);
    expect(s.invalid[0]!.file).toBe(join(dir, "bad.yml"));

    writeFileSync(join(dir, "a.yaml"), nodeYaml("a", "10.244.11.0/24"));
    unlinkSync(join(dir, "b.json"));
    unlinkSync(join(dir, "bad.yml"));
    s = src.refresh();
    expect([...s.nodes.keys()]).toEqual(["a"]);
    expect(s.nodes.get("a")!.podCIDRs).toEqual(["10.244.11.0/24"]);
    expect(s.invalid).toEqual([]);
    expect(src.current()).toBe(s);
  });

  test("a missing directory keeps the last state and reports it", () => {
    const src = new ManifestsDirSource(join(dir, "nope"));
    const s = src.refresh();
    expect(s.nodes.size).toBe(0);
    expect(s.invalid[0]!.error).toContain("cannot read manifests directory");
  });

  test("watch calls back (debounced) on change", async () => {
    const src = new ManifestsDirSource(dir, { debounceMs: 20 });
    let calls = 0;
    src.watch(() => calls++);
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `w${i}.yaml`), nodeYaml(`w${i}`, `10.244.${20 + i}.0/24`));
    const t0 = Date.now();
    while (calls === 0 && Date.now() - t0 < 2000) await Bun.sleep(10);
    await Bun.sleep(60);
    src.close();
    expect(calls).toBe(1);
  });

  test("openSource parses the spec", () => {
    expect(openSource(`dir:${dir}`).description).toBe(`dir:${dir}`);
    expect(() => openSource("kube:")).toThrow(/cannot use cluster source/);
    expect(() => openSource("dir:")).toThrow(/cannot use cluster source/);
  });
});
