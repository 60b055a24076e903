// Anti-spoofing on nftables sets (src/plugin/antispoof.ts over src/kernel/nftables.ts), each
// call a process of its own inside a throwaway node namespace (prefix "mnn"), as the plugin
// runs: the one-time table creation under 20 racing ADDs, replacement of an older layout,
// what attach/detach/check do to the sets (read back with `nft -j`), and real traffic: a
// forged source address or MAC is dropped, the real one passes.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import type { Mode } from "../../src/plugin/netconf.ts";
import { cleanupNetns, createNetns, inNetns, run } from "../helpers/netns.ts";

setDefaultTimeout(30_000);
afterAll(() => cleanupNetns());

const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const SCRIPT = resolve(import.meta.dir, "scripts/antispoof.ts");
const TABLE = "mncni-antispoof";
const FAMILY = { bridge: "bridge", routed: "inet" } as const;

const argv = (mode: Mode, op: string, args: string[]) => ["ip", "netns", "exec", "", BUN, SCRIPT, mode, op, ...args];

function call(node: string, mode: Mode, op: string, ...args: string[]): { code: number; out: string } {
  const a = argv(mode, op, args);
  a[3] = node;
  const r = run(a, { allowFail: true });
  return { code: r.code, out: (r.stdout + r.stderr).trim() };
}

async function callAsync(node: string, mode: Mode, op: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const a = argv(mode, op, args);
  a[3] = node;
  const p = Bun.spawn(a, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: (out + err).trim() };
}

/** An element of `nft -j` output as text: "a . b", without its comment. */
const elemText = (e: any): string => (typeof e === "string" ? e : e.concat ? e.concat.join(" . ") : elemText(e.elem.val));

interface TableView {
  comment?: string;
  chains: string[];
  rules: number;
  /** Set name -> elements, each "a . b" as nft prints it. */
  sets: Record<string, string[]>;
}

function tableOf(node: string, mode: Mode): TableView | undefined {
  const r = inNetns(node, ["nft", "-j", "list", "table", FAMILY[mode], TABLE], { allowFail: true });
  if (r.code !== 0) return undefined;
  const items = JSON.parse(r.stdout).nftables as any[];
  const sets: Record<string, string[]> = {};
  for (const s of items.filter((i) => i.set).map((i) => i.set)) {
    sets[s.name] = ((s.elem ?? []) as any[]).map(elemText).sort();
  }
  // nft 1.0.6 leaves a table's comment out of its JSON.
  const text = inNetns(node, ["nft", "list", "table", FAMILY[mode], TABLE]).stdout;
  return {
    comment: /^\s*comment "([^"]*)"/m.exec(text)?.[1],
    chains: items.filter((i) => i.chain).map((i) => i.chain.name),
    rules: items.filter((i) => i.rule).length,
    sets,
  };
}

const pod = (i: number) => ({ veth: `mnnp${i}`, mac: `02:00:00:00:01:${i.toString(16).padStart(2, "0")}`, v4: `10.97.0.${10 + i}`, v6: `fd00:97::${(10 + i).toString(16)}` });

describe("the static ruleset", () => {
  test("20 ADDs racing on a fresh node create each mode's table exactly once and keep every pod", async () => {
    const node = createNetns("mnn");
    const modes: Mode[] = ["bridge", "routed"];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const p = pod(i);
        return callAsync(node, modes[i % 2]!, "attach", p.veth, p.mac, p.v4, p.v6);
      }),
    );
    expect(results.filter((r) => r.code !== 0)).toEqual([]);
    for (const [m, mode] of modes.entries()) {
      const t = tableOf(node, mode)!;
      const mine = Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 2 === m).map(pod);
      expect(t.chains).toEqual(["prerouting"]);
      expect(t.rules).toBe(mode === "bridge" ? 7 : 3); // one copy of the rules, not one per racer
      expect(t.sets.ports).toEqual(mine.map((p) => p.veth).sort());
      expect(t.sets.addr4).toEqual(mine.map((p) => `${p.veth} . ${p.v4}`).sort());
      expect(t.sets.addr6).toEqual(mine.map((p) => `${p.veth} . ${p.v6}`).sort());
      if (mode === "bridge") expect(t.sets.macs).toEqual(mine.map((p) => `${p.veth} . ${p.mac}`).sort());
      else expect(t.sets.macs).toBeUndefined();
    }
  });

  test("a table of an older layout (per-pod chains) is replaced once, also under racing ADDs", async () => {
    const node = createNetns("mnn");
    inNetns(node, ["nft", "-f", "-"], {
      stdin: `table bridge ${TABLE} {\n map pods { type ifname : verdict; }\n chain old1 { ether saddr != 02:00:00:00:00:01 drop; }\n` +
        ` chain prerouting { type filter hook prerouting priority -300; policy accept; iifname vmap @pods; }\n}\n` +
        `add element bridge ${TABLE} pods { "old1" : jump old1 }\n`,
    });
    // DEL against the old layout is a no-op success; CHECK says what is wrong.
    expect(call(node, "bridge", "detach", "old1").code).toBe(0);
    const chk = call(node, "bridge", "check", "old1");
    expect(chk.code).toBe(1);
    expect(chk.out).toContain("another layout");
    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => callAsync(node, "bridge", "attach", pod(i).veth, pod(i).mac, pod(i).v4)));
    expect(results.filter((r) => r.code !== 0)).toEqual([]);
    const t = tableOf(node, "bridge")!;
    expect(t.comment).toBe("mncni anti-spoofing v2");
    // A table written by a newer mncni is left alone, and ADD says why it cannot go on.
    inNetns(node, ["nft", "-f", "-"], { stdin: `table inet ${TABLE} {\n comment "mncni anti-spoofing v3"\n set ports { type ifname; }\n}\n` });
    const newer = call(node, "routed", "attach", pod(9).veth, pod(9).mac, pod(9).v4);
    expect(newer).toEqual({ code: 1, out: expect.stringContaining('has a newer layout ("mncni anti-spoofing v3")') });
    expect(tableOf(node, "routed")!.sets).toEqual({ ports: [] });
    expect(t.chains).toEqual(["prerouting"]);
    expect(t.rules).toBe(7);
    expect(t.sets.ports).toEqual([0, 1, 2, 3, 4].map((i) => pod(i).veth).sort());
  });
});

describe("attach, detach, check", () => {
  const mode: Mode = "bridge";
  let node: string;
  const [a, b] = [pod(1), pod(2)];
  beforeAll(() => {
    node = createNetns("mnn");
  });

  test("attach adds exactly the pod's elements; check passes", () => {
    expect(call(node, mode, "attach", a.veth, a.mac, a.v4, a.v6).code).toBe(0);
    expect(call(node, mode, "attach", b.veth, b.mac, b.v4).code).toBe(0);
    expect(tableOf(node, mode)!.sets).toEqual({
      ports: [a.veth, b.veth],
      macs: [`${a.veth} . ${a.mac}`, `${b.veth} . ${b.mac}`],
      addr4: [`${a.veth} . ${a.v4}`, `${b.veth} . ${b.v4}`],
      addr6: [`${a.veth} . ${a.v6}`],
    });
    expect(call(node, mode, "check", a.veth)).toEqual({ code: 0, out: "" });
    expect(call(node, mode, "check", b.veth).code).toBe(0);
  });

  test("attaching the same veth again replaces what an earlier attachment left", () => {
    expect(call(node, mode, "attach", b.veth, b.mac, "10.97.0.99", "fd00:97::99").code).toBe(0);
    const t = tableOf(node, mode)!;
    expect(t.sets.addr4).toEqual([`${a.veth} . ${a.v4}`, `${b.veth} . 10.97.0.99`]);
    expect(t.sets.addr6).toEqual([`${a.veth} . ${a.v6}`, `${b.veth} . fd00:97::99`]);
    expect(t.sets.ports).toEqual([a.veth, b.veth]);
    expect(inNetns(node, ["nft", "list", "set", "bridge", TABLE, "ports"]).stdout).toContain(`"${b.veth}" comment "${b.mac} 10.97.0.99 fd00:97::99"`);
  });

  test("the port's comment names the pod; detach finds its elements by it, or by listing when it or the port is wrong or missing", () => {
    const c = pod(5);
    const portsText = () => inNetns(node, ["nft", "list", "set", "bridge", TABLE, "ports"]).stdout;
    // comment undefined: no port element at all (removed by hand, or a second DEL).
    const replacePort = (comment: string | undefined) =>
      inNetns(node, ["nft", "-f", "-"], {
        stdin: `delete element bridge ${TABLE} ports { "${c.veth}" }\n` +
          (comment === undefined ? "" : `add element bridge ${TABLE} ports { "${c.veth}"${comment} }\n`),
      });
    const leftOf = () => Object.values(tableOf(node, mode)!.sets).flat().filter((e) => e.startsWith(c.veth));
    for (const comment of [" comment \"02:00:00:00:00:99 10.97.9.9\"", "", " comment \"not ours\"", undefined]) {
      expect(call(node, mode, "attach", c.veth, c.mac, c.v4, c.v6).code).toBe(0);
      expect(portsText()).toContain(`"${c.veth}" comment "${c.mac} ${c.v4} ${c.v6}"`);
      expect(leftOf()).toHaveLength(4);
      replacePort(comment);
      expect(call(node, mode, "detach", c.veth).code).toBe(0);
      expect(leftOf()).toEqual([]);
    }
  });

  test("check fails when the pod's port, MAC or addresses are gone", () => {
    const del = (set: string, elem: string) => inNetns(node, ["nft", "delete", "element", "bridge", TABLE, set, `{ ${elem} }`]);
    del("ports", `"${b.veth}"`);
    let r = call(node, mode, "check", b.veth);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`anti-spoofing rules for "${b.veth}" are missing in table bridge ${TABLE}: not in set ports`);
    call(node, mode, "attach", b.veth, b.mac, b.v4);
    del("macs", `"${b.veth}" . ${b.mac}`);
    expect(call(node, mode, "check", b.veth).out).toContain("no element in set macs");
    call(node, mode, "attach", b.veth, b.mac, b.v4);
    del("addr4", `"${b.veth}" . ${b.v4}`);
    expect(call(node, mode, "check", b.veth).out).toContain("no element in set addr4 or addr6");
    expect(call(node, mode, "check", a.veth).code).toBe(0);
  });

  test("detach removes only the pod's elements, and succeeds again when nothing is left", () => {
    call(node, mode, "attach", b.veth, b.mac, b.v4);
    expect(call(node, mode, "detach", a.veth).code).toBe(0);
    expect(tableOf(node, mode)!.sets).toEqual({
      ports: [b.veth],
      macs: [`${b.veth} . ${b.mac}`],
      addr4: [`${b.veth} . ${b.v4}`],
      addr6: [],
    });
    expect(call(node, mode, "detach", a.veth).code).toBe(0);
    expect(call(node, mode, "check", a.veth).code).toBe(1);
    // A node without the table: DEL is a no-op, CHECK names the missing table.
    const bare = createNetns("mnn");
    expect(call(bare, mode, "detach", a.veth).code).toBe(0);
    expect(call(bare, "routed", "check", a.veth).out).toContain("the table does not exist");
    expect(tableOf(bare, mode)).toBeUndefined();
  });
});

// ---- traffic ----------------------------------------------------------------------------

function echoRequests(ns: string, f: 4 | 6): number {
  const text = inNetns(ns, ["cat", f === 4 ? "/proc/net/snmp" : "/proc/net/snmp6"]).stdout;
  if (f === 6) return Number(/^Icmp6InEchos\s+(\d+)/m.exec(text)![1]);
  const [names, values] = text.split("\n").filter((l) => l.startsWith("Icmp:")).map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf("InEchos")]);
}

/** Echo requests that reach `target` when `from` pings dst twice from `source`. */
function echoesArriving(o: { from: string; target: string; dst: string; source: string }): number {
  const f = o.dst.includes(":") ? 6 : 4;
  const before = echoRequests(o.target, f);
  run(["ip", "netns", "exec", o.from, "ping", `-${f}`, "-c", "2", "-i", "0.2", "-W", "0.5", "-I", o.source, o.dst], { allowFail: true });
  return echoRequests(o.target, f) - before;
}

/** Pings until the path works (fresh bridge ports and neighbour entries take a moment). */
function prime(from: string, dst: string, source: string): void {
  for (let i = 0; i < 10; i++) {
    if (run(["ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", "-I", source, dst], { allowFail: true }).code === 0) return;
  }
  throw new Error(`no path from ${source} to ${dst}`);
}

/** A pod namespace wired to the node by a veth (host end `veth`), addresses on eth0. */
function podNs(node: string, veth: string, mac: string, cidrs: string[]): string {
  const ns = createNetns("mnn");
  run(["ip", "-n", node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
  run(["ip", "-n", ns, "link", "set", "eth0", "address", mac, "up"]);
  for (const c of cidrs) run(["ip", "-n", ns, "addr", "add", c, "dev", "eth0", ...(c.includes(":") ? ["nodad"] : [])]);
  run(["ip", "-n", node, "link", "set", veth, "up"]);
  return ns;
}

const FORGED = { 4: "10.96.0.200", 6: "fd00:96::200" } as const;

describe("traffic", () => {
  test("bridge: a forged source address or MAC does not reach the other pod, the real one does", () => {
    const node = createNetns("mnn");
    run(["ip", "-n", node, "link", "add", "br0", "type", "bridge"]);
    run(["ip", "-n", node, "link", "set", "br0", "up"]);
    const [pa, pb] = [pod(1), pod(2)];
    const real = { a: { 4: "10.96.0.2", 6: "fd00:96::2" }, b: { 4: "10.96.0.3", 6: "fd00:96::3" } } as const;
    const A = podNs(node, pa.veth, pa.mac, [`${real.a[4]}/24`, `${real.a[6]}/64`, `${FORGED[4]}/24`, `${FORGED[6]}/64`]);
    const B = podNs(node, pb.veth, pb.mac, [`${real.b[4]}/24`, `${real.b[6]}/64`]);
    for (const v of [pa.veth, pb.veth]) run(["ip", "-n", node, "link", "set", v, "master", "br0"]);
    expect(call(node, "bridge", "attach", pa.veth, pa.mac, real.a[4], real.a[6]).code).toBe(0);
    expect(call(node, "bridge", "attach", pb.veth, pb.mac, real.b[4], real.b[6]).code).toBe(0);
    for (const f of [4, 6] as const) {
      prime(A, real.b[f], real.a[f]);
      expect(echoesArriving({ from: A, target: B, dst: real.b[f], source: real.a[f] })).toBe(2);
      expect(echoesArriving({ from: A, target: B, dst: real.b[f], source: FORGED[f] })).toBe(0);
    }
    // A forged MAC with the real address: dropped too (the neighbour entries B learnt stay valid).
    run(["ip", "-n", A, "link", "set", "eth0", "address", "02:00:5e:00:53:99"]);
    for (const f of [4, 6] as const) expect(echoesArriving({ from: A, target: B, dst: real.b[f], source: real.a[f] })).toBe(0);
    // Without the pod's elements its packets are no longer checked: the forged source arrives.
    run(["ip", "-n", A, "link", "set", "eth0", "address", pa.mac]);
    expect(call(node, "bridge", "detach", pa.veth).code).toBe(0);
    expect(echoesArriving({ from: A, target: B, dst: real.b[4], source: FORGED[4] })).toBe(2);
  });

  test("routed: a forged source address does not reach the node, the real one does", () => {
    const node = createNetns("mnn");
    const p = pod(3);
    const real = { 4: "10.96.1.2", 6: "fd00:96:1::2" } as const;
    const nodeAddr = { 4: "10.96.1.1", 6: "fd00:96:1::1" } as const;
    const forged = { 4: "10.96.1.200", 6: "fd00:96:1::200" } as const;
    const A = podNs(node, p.veth, p.mac, [`${real[4]}/24`, `${real[6]}/64`, `${forged[4]}/24`, `${forged[6]}/64`]);
    for (const f of [4, 6] as const) run(["ip", "-n", node, "addr", "add", `${nodeAddr[f]}/${f === 4 ? 24 : 64}`, "dev", p.veth, ...(f === 6 ? ["nodad"] : [])]);
    expect(call(node, "routed", "attach", p.veth, p.mac, real[4], real[6]).code).toBe(0);
    for (const f of [4, 6] as const) {
      prime(A, nodeAddr[f], real[f]);
      expect(echoesArriving({ from: A, target: node, dst: nodeAddr[f], source: real[f] })).toBe(2);
      expect(echoesArriving({ from: A, target: node, dst: nodeAddr[f], source: forged[f] })).toBe(0);
    }
  });
});
