// The agent's side of the fast path's kernel objects (src/agent/fast-path/node.ts) on the real
// kernel, in a throwaway namespace: objects an older build recorded (a program without the
// verdict counters, as before they existed) are adopted and upgraded: this build's program over
// the same plain-pods map, the filters re-pointed to it, the old program freed; then removal
// leaves no filter, no record and, once the agent lets go, no program or map. `tc -j` and
// `bpftool` are the independent views.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FastPathNode } from "../../src/agent/fast-path/node.ts";
import { closeBpfFd, loadPodRedirect, Netlink, PlainPodsMap, progInfo } from "../../src/kernel/index.ts";
import { attachFastPath, fastPathDir } from "../../src/plugin/fast-path.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";

setDefaultTimeout(60_000);

let H = "";
let base = "";
let host: Netlink;

beforeAll(() => {
  H = createNetns("mfp");
  inNetns(H, ["ip", "link", "add", "h1", "type", "veth", "peer", "name", "p1"]);
  inNetns(H, ["ip", "link", "set", "h1", "up"]);
  base = mkdtempSync(join(tmpdir(), "mncni-fp-"));
  host = Netlink.open(netnsPath(H));
});

afterAll(() => {
  host?.close();
  cleanupNetns();
  if (base) rmSync(base, { recursive: true, force: true });
});

const filterProg = (dev: string): number | undefined =>
  (JSON.parse(inNetns(H, ["tc", "-j", "filter", "show", "dev", dev, "ingress"]).stdout || "[]") as any[]).find((f) => f.options?.bpf_name === "mncni_pod_redir")?.options?.prog?.id;

async function freed(kind: "prog" | "map", id: number): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    if (run(["bpftool", kind, "show", "id", String(id)], { allowFail: true }).code !== 0) return true;
    await Bun.sleep(25);
  }
  return false;
}

test("an older build's objects are adopted and upgraded over the same map; removal leaves nothing", async () => {
  const dir = fastPathDir(base, "net");
  // What an older build left: its program (no counters map) over a map, on a pod's device, recorded.
  const oldMap = PlainPodsMap.create();
  const oldProg = loadPodRedirect(oldMap.fd);
  const old = progInfo(oldProg);
  oldMap.set({ ip: "10.9.0.2", podMac: "02:00:00:00:00:02", hostMac: "02:00:00:00:00:01", hostIndex: host.link("h1")!.index });
  attachFastPath(host, host.link("h1")!.index, oldProg);
  run(["mkdir", "-p", dir]);
  writeFileSync(join(dir, ".mncni-fast-path.json"), JSON.stringify({ prog: old.id, tag: old.tag, map: old.mapIds[0] }));
  closeBpfFd(oldProg);
  oldMap.close();
  expect(filterProg("h1")).toBe(old.id);

  const node = new FastPathNode({ host, mode: "routed", bridge: "unused", network: "net", ipamDataDir: base, guarded: () => [] });
  try {
    const changes = node.sync([]);
    expect(changes).toContain(`adopt fast path program ${old.id} and map ${old.mapIds[0]}`);
    expect(changes.some((c) => c.startsWith("replace fast path program with this build's"))).toBe(true);
    expect(changes).toContain("re-attach fast path program to h1");
    const rec = JSON.parse(readFileSync(join(dir, ".mncni-fast-path.json"), "utf8")) as { prog: number; map: number; counters?: number };
    // Same map (its pods stay plain through the upgrade: none was wanted here, so the pass took it out).
    expect(rec.map).toBe(old.mapIds[0]!);
    expect(rec.counters).toBeNumber();
    expect(rec.prog).not.toBe(old.id);
    expect(filterProg("h1")).toBe(rec.prog);
    expect(changes).toContain("fast path: 10.9.0.2 takes the stack");
    expect(await freed("prog", old.id)).toBe(true);
    // A second pass: nothing to do.
    expect(node.sync([])).toEqual([]);

    expect(node.remove()).toEqual(["fast path filter on h1", `fast path record in ${dir}`]);
    expect(filterProg("h1")).toBeUndefined();
    expect(existsSync(join(dir, ".mncni-fast-path.json"))).toBe(false);
    expect(await freed("prog", rec.prog)).toBe(true);
    expect(await freed("map", rec.map)).toBe(true);
    expect(await freed("map", rec.counters!)).toBe(true);
  } finally {
    node.close();
  }
});
