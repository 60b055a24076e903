import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ManifestsDirSource, openSource } from "../../src/cluster/index.ts";

const dir = mkdtempSync(`/tmp/mna-cluster-${process.pid}-`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nodeYaml = (name: string, cidr: string) => `kind: Node\nmetadata: {name: ${name}}\nspec: {podCIDRs: [${cidr}]}\n`;

async function waitFor(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

describe("ManifestsDirSource", () => {
  test("reads yaml/yml/json, skips dotfiles and other files, re-reads changes, reports bad files", async () => {
    const d = join(dir, "read");
    mkdirSync(d);
    writeFileSync(join(d, "a.yaml"), nodeYaml("a", "10.244.1.0/24"));
    writeFileSync(join(d, "b.json"), JSON.stringify({ kind: "Node", metadata: { name: "b" } }));
    writeFileSync(join(d, ".c.yaml.tmp"), nodeYaml("c", "10.244.3.0/24"));
    writeFileSync(join(d, "README.md"), "not a manifest");
    writeFileSync(join(d, "bad.yml"), "kind: [");
    const src = new ManifestsDirSource(d);
    await src.start();
    let s = src.snapshot().state;
    expect(src.snapshot().stale).toBeUndefined();
    expect([...s.nodes.keys()].sort()).toEqual(["a", "b"]);
    expect(s.invalid).toHaveLength(1);
    expect(s.invalid[0]!.file).toBe(join(d, "bad.yml"));

    writeFileSync(join(d, "a.yaml"), nodeYaml("a", "10.244.11.0/24"));
    unlinkSync(join(d, "b.json"));
    unlinkSync(join(d, "bad.yml"));
    expect(src.rescan()).toBe(true);
    s = src.snapshot().state;
    expect([...s.nodes.keys()]).toEqual(["a"]);
    expect(s.nodes.get("a")!.podCIDRs).toEqual(["10.244.11.0/24"]);
    expect(s.invalid).toEqual([]);
    // Nothing changed: the same snapshot, not a rebuilt one.
    expect(src.rescan()).toBe(false);
    expect(src.snapshot().state).toBe(s);
  });

  test("a missing directory at start is a refusal: start() rejects", async () => {
    const src = new ManifestsDirSource(join(dir, "nope"));
    await expect(src.start()).rejects.toThrow(/cannot read manifests directory/);
  });

  test("a directory that becomes unreadable keeps the last state, marked stale, until it is back", async () => {
    const d = join(dir, "moving");
    mkdirSync(d);
    writeFileSync(join(d, "a.yaml"), nodeYaml("a", "10.244.1.0/24"));
    const src = new ManifestsDirSource(d);
    await src.start();
    const before = src.snapshot().state;
    renameSync(d, `${d}.away`);
    expect(src.rescan()).toBe(true);
    expect(src.snapshot().state).toBe(before);
    expect(src.snapshot().stale).toContain(`cannot read manifests directory "${d}"`);
    renameSync(`${d}.away`, d);
    src.rescan();
    expect(src.snapshot()).toEqual({ state: before });
  });

  test("watch re-reads the cache before it calls back", async () => {
    const d = join(dir, "watch");
    mkdirSync(d);
    const src = new ManifestsDirSource(d, { debounceMs: 20 });
    await src.start();
    const seen: number[] = [];
    src.watch(() => seen.push(src.snapshot().state.nodes.size));
    try {
      for (let i = 0; i < 5; i++) writeFileSync(join(d, `w${i}.yaml`), nodeYaml(`w${i}`, `10.244.${20 + i}.0/24`));
      // Each call sees the cache already updated; the last one sees every file.
      await waitFor("a callback that sees all five Nodes", () => seen.includes(5));
      expect(seen.every((n, i) => n > 0 && (i === 0 || n >= seen[i - 1]!))).toBe(true);
    } finally {
      src.close();
    }
  });

  test("a directory replaced by another is followed (re-list, and a watch on the new one)", async () => {
    const d = join(dir, "replaced");
    mkdirSync(d);
    writeFileSync(join(d, "a.yaml"), nodeYaml("a", "10.244.1.0/24"));
    const src = new ManifestsDirSource(d, { debounceMs: 20, relistMs: 50 });
    await src.start();
    const names = () => [...src.snapshot().state.nodes.keys()].join();
    src.watch(() => {});
    try {
      renameSync(d, `${d}.old`);
      mkdirSync(d);
      writeFileSync(join(d, "b.yaml"), nodeYaml("b", "10.244.2.0/24"));
      await waitFor("the new directory's Node", () => names() === "b" && src.snapshot().stale === undefined);
      // Later changes in the new directory are seen too.
      writeFileSync(join(d, "c.yaml"), nodeYaml("c", "10.244.3.0/24"));
      await waitFor("a Node written into the new directory", () => names() === "b,c");
    } finally {
      src.close();
    }
  });

  test("openSource parses the spec", () => {
    expect(openSource(`dir:${dir}`).description).toBe(`dir:${dir}`);
    expect(() => openSource("kube:")).toThrow(/cannot use cluster source/);
    expect(() => openSource("dir:")).toThrow(/cannot use cluster source/);
    expect(() => openSource("dir")).toThrow(/expected one of dir:PATH, kubernetes\[:KUBECONFIG\]/);
    // The Kubernetes source: in-cluster without an argument, a kubeconfig with one; nothing read yet.
    expect(openSource("kubernetes").description).toBe("kubernetes");
    expect(openSource("kubernetes:/etc/kubeconfig").description).toBe("kubernetes:/etc/kubeconfig");
    expect(() => openSource("kubernetes:")).toThrow(/cannot use cluster source "kubernetes:"/);
    expect(() => openSource("toString")).toThrow(/cannot use cluster source/);
  });
});
