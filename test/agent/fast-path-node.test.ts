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
import { Netlink } from "../../src/kernel/index.ts";
import { Asm, closeBpfFd, loadPodRedirect, PlainPodsMap, PROG_TYPE, progInfo, progLoad, R } from "../../src/kernel/bpf/index.ts";
import { attachFastPath, fastPathDir, openFastPath } from "../../src/plugin/fast-path.ts";
import { cleanupNetns, createNetns, inNetns, netnsPath, run } from "../helpers/netns.ts";
import { ingressPrograms } from "../helpers/ingress-programs.ts";

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

/** Our pod program on a device, and where (tcx, or an older build's clsact filter). */
const attached = (dev: string): { id: number; hook: string } | undefined => {
  const p = ingressPrograms(H, dev).find((x) => x.name === "mncni_pod_redir");
  return p && { id: p.id, hook: p.hook };
};
const filterProg = (dev: string): number | undefined => attached(dev)?.id;

async function freed(kind: "prog" | "map", id: number): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    if (run(["bpftool", kind, "show", "id", String(id)], { allowFail: true }).code !== 0) return true;
    await Bun.sleep(25);
  }
  return false;
}

test("an older build's objects are adopted and upgraded over the same map; removal leaves nothing", async () => {
  const dir = fastPathDir(base, "net");
  // What an older build left: its program (no counters map) over a map, on a pod's device
  // (a clsact filter: builds before tcx attached it so), recorded.
  const oldMap = PlainPodsMap.create();
  const oldProg = loadPodRedirect(oldMap.fd);
  const old = progInfo(oldProg);
  oldMap.set({ ip: "10.9.0.2", podMac: "02:00:00:00:00:02", hostMac: "02:00:00:00:00:01", hostIndex: host.link("h1")!.index });
  host.addClsact(host.link("h1")!.index);
  host.addBpfFilter({ index: host.link("h1")!.index, progFd: oldProg, name: "mncni_pod_redir", priority: 1 });
  run(["mkdir", "-p", dir]);
  writeFileSync(join(dir, ".mncni-fast-path.json"), JSON.stringify({ prog: old.id, tag: old.tag, map: old.mapIds[0] }));
  closeBpfFd(oldProg);
  oldMap.close();
  expect(attached("h1")).toEqual({ id: old.id, hook: "clsact" });

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
    // Moved to tcx, the older build's clsact gone with its filter.
    expect(ingressPrograms(H, "h1").map((p) => `${p.name} ${p.id} ${p.hook}`)).toEqual([`mncni_pod_redir ${rec.prog} tcx`]);
    expect(JSON.parse(inNetns(H, ["tc", "-j", "qdisc", "show", "dev", "h1"]).stdout).map((q: { kind: string }) => q.kind)).not.toContain("clsact");
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

/** The programs on a device's ingress: tcx's (ours), then clsact's (others'). */
const underlayFilters = (dev: string): { name: string; prog?: number; hook: string }[] => ingressPrograms(H, dev).map((p) => ({ name: p.name, prog: p.id, hook: p.hook }));

test("across nodes: the host-gw routes the kernel has fill the map and put the underlay program on their device; a route gone leaves the map; restart adopts it; removal takes only ours", async () => {
  const dir = fastPathDir(base, "net2");
  inNetns(H, ["ip", "link", "add", "u1", "type", "veth", "peer", "name", "u2"]);
  for (const d of ["u1", "u2"]) inNetns(H, ["ip", "link", "set", d, "up"]);
  inNetns(H, ["ip", "addr", "add", "10.98.0.1/24", "dev", "u1"]);
  // Someone else's filter on the underlay (a program that passes everything): ours must leave it alone.
  inNetns(H, ["tc", "qdisc", "add", "dev", "u1", "clsact"]);
  const other = progLoad({ type: PROG_TYPE.SCHED_CLS, insns: new Asm().mov(R.r0, 0).exit().assemble(), license: "GPL", name: "other" });
  host.addBpfFilter({ index: host.link("u1")!.index, progFd: other, name: "other", priority: 1 });
  const otherId = progInfo(other).id;
  closeBpfFd(other);
  // A peer's pod CIDR as host-gw programs it (protocol 77, via the peer's address), and a route of no one's.
  const route = ["10.97.1.0/24", "via", "10.98.0.2", "dev", "u1", "proto", "77"];
  inNetns(H, ["ip", "route", "add", ...route]);
  inNetns(H, ["ip", "route", "add", "10.96.5.0/24", "via", "10.98.0.2", "dev", "u1"]);
  const u1 = host.link("u1")!.index;
  const record = () => JSON.parse(readFileSync(join(dir, ".mncni-fast-path.json"), "utf8")) as { prog: number; map: number; hostGw: number; underlay?: { prog: number } };
  /** The host-gw routes map's entries as bpftool shows them: prefix length (IPv4 as 96 + n), last 4 address bytes, ifindex. */
  const entries = () => (JSON.parse(run(["bpftool", "-j", "map", "dump", "id", String(record().hostGw)]).stdout) as { key: string[]; value: string[] }[])
    .map((e) => `${parseInt(e.key[0]!, 16)} ${e.key.slice(16, 20).map((b) => parseInt(b, 16)).join(".")} ${parseInt(e.value[0]!, 16)}`);

  let node = new FastPathNode({ host, mode: "routed", bridge: "unused", network: "net2", ipamDataDir: base, guarded: () => [] });
  try {
    const first = node.sync([]);
    expect(first).toContain(`fast path: pod CIDR 10.97.1.0/24 across the underlay (device ${u1})`);
    expect(first).toContain(`attach fast path underlay program to device ${u1}`);
    expect(entries()).toEqual([`120 10.97.1.0 ${u1}`]);
    const prog = record().underlay!.prog;
    expect(underlayFilters("u1")).toEqual([{ name: "mncni_underlay", prog, hook: "tcx" }, { name: "other", prog: otherId, hook: "clsact" }]);
    expect(node.sync([])).toEqual([]);

    // The peer removed (its route gone): out of the map, and no device left for the program.
    inNetns(H, ["ip", "route", "del", ...route]);
    expect(node.sync([])).toEqual(["fast path: pod CIDR 10.97.1.0/24 takes the stack (no host-gw route)", "detach fast path underlay program from u1"]);
    expect(entries()).toEqual([]);
    expect(underlayFilters("u1")).toEqual([{ name: "other", prog: otherId, hook: "clsact" }]);
    inNetns(H, ["ip", "route", "add", ...route]);
    expect(node.sync([])).toContain(`attach fast path underlay program to device ${u1}`);

    // An agent restart (a pod's filter holds the pod program meanwhile): the recorded underlay
    // program is adopted, its filter left as it is.
    const pod = openFastPath(dir);
    attachFastPath(host, host.link("h1")!.index, pod.progFd);
    closeBpfFd(pod.progFd);
    node.close();
    node = new FastPathNode({ host, mode: "routed", bridge: "unused", network: "net2", ipamDataDir: base, guarded: () => [] });
    const again = node.sync([]);
    expect(again).toContain(`adopt fast path underlay program ${prog}`);
    expect(again.some((c) => c.startsWith("attach"))).toBe(false);
    expect(underlayFilters("u1")).toEqual([{ name: "mncni_underlay", prog, hook: "tcx" }, { name: "other", prog: otherId, hook: "clsact" }]);

    const rec = record();
    expect(node.remove()).toEqual(["fast path filter on h1", "fast path underlay filter on u1", `fast path record in ${dir}`]);
    expect(underlayFilters("u1")).toEqual([{ name: "other", prog: otherId, hook: "clsact" }]);
    expect(await freed("prog", prog)).toBe(true);
    expect(await freed("prog", rec.prog)).toBe(true);
    expect(await freed("map", rec.hostGw)).toBe(true);
  } finally {
    node.close();
  }
});
