// Keeps bench/dataplane.ts working: a tiny run (one mncni path and the floor it is compared
// with, one round, 1 s tests) through the compiled binary, checked for real measurements
// and for nothing left behind (namespaces, servers); and the hand-built baselines (plain `ip`,
// no CNI) with their reduced tests and the ratio of an mncni path to them.
import { expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { MNCNI_BIN, requireBinary } from "../helpers/binary.ts";
import { run } from "../helpers/netns.ts";

setDefaultTimeout(120_000);

/** One round of 1 s tests on the given paths; checks that nothing of the run is left behind. */
function oneRound(paths: string): any {
  requireBinary();
  const p = Bun.spawnSync([process.execPath, resolve(import.meta.dir, "../../bench/dataplane.ts"), "--paths", paths, "--rounds", "1", "--duration", "1", "--no-write", "--json"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, MNCNI_BIN },
  });
  const err = p.stderr.toString();
  expect(p.exitCode, err).toBe(0);
  const id = /\(id (dp[0-9a-z]+)\)/.exec(err)?.[1];
  expect(id).toBeDefined();
  expect(run(["ip", "netns", "list"]).stdout.split("\n").filter((l) => l.startsWith(`${id}-`))).toEqual([]);
  expect(run(["pgrep", "-f", `${id}-`], { allowFail: true }).stdout.trim()).toBe("");
  return JSON.parse(p.stdout.toString());
}

test("a one-round run of the floor and same-node mncni bridge measures both and cleans up", () => {
  const out = oneRound("raw-veth,bridge");
  expect(out.rows.map((r: any) => r.key)).toEqual(["raw-veth", "bridge"]);
  for (const r of out.rows) {
    expect(r.samples).toHaveLength(1);
    expect(r.median.tcp1).toBeGreaterThan(0);
    expect(r.median.tcp4).toBeGreaterThan(0);
    expect(r.median.udp1400).toBeGreaterThan(0);
    expect(r.median.rrP50).toBeGreaterThan(0);
    expect(r.median.rrP99).toBeGreaterThanOrEqual(r.median.rrP50);
  }
  // Facts about the measurement, not the bench's own arithmetic: a veth pair carries well over
  // 1 Gbit/s of one TCP stream on any machine this runs on (a figure far below means nothing
  // was measured), and a pod path only adds hops to the floor: it is compared with the floor,
  // and not twice as fast as it (even 1 s tests on a shared machine stay inside that), nor
  // slower than a twentieth of it.
  expect(out.rows[0].median.tcp1).toBeGreaterThan(1);
  expect(out.rows[1].baseline).toBe("raw-veth");
  expect(out.rows[1].ratio.med).toBeGreaterThan(0.05);
  expect(out.rows[1].ratio.med).toBeLessThan(2);
});

test("the hand-built baselines carry traffic with the reduced tests, and mncni's path gets its ratio to them", () => {
  const out = oneRound("hand-routed,routed,hand-hostgw");
  const row = (k: string) => out.rows.find((r: any) => r.key === k);
  expect(out.rows.map((r: any) => r.key)).toEqual(["hand-routed", "routed", "hand-hostgw"]);
  for (const k of ["hand-routed", "hand-hostgw"]) {
    expect(row(k).reduced).toBe(true);
    expect(row(k).median.tcp1).toBeGreaterThan(0);
    expect(row(k).median.rrP50).toBeGreaterThan(0);
    // Not run on a reduced path: NaN in the run, null in JSON.
    expect(row(k).median.tcp4).toBeNull();
    expect(row(k).median.udp1400).toBeNull();
  }
  expect(row("routed").handBuilt).toBe("hand-routed");
  // mncni's routed path is the hand-built one plus its tables: not twice as fast, not a twentieth.
  expect(row("hand-routed").median.tcp1).toBeGreaterThan(1);
  expect(row("routed").handRatio.med).toBeGreaterThan(0.05);
  expect(row("routed").handRatio.med).toBeLessThan(2);
});

test("the fast-path row carries traffic with forwarding off in its node namespace: every packet took the program", () => {
  const out = oneRound("raw-veth,hand-fastpath");
  const row = out.rows.find((r: any) => r.key === "hand-fastpath");
  expect(row.baseline).toBe("raw-veth");
  expect(row.median.tcp1).toBeGreaterThan(0.5);
  expect(row.median.udp1400).toBeGreaterThan(0);
  expect(row.median.rrP50).toBeGreaterThan(0);
});

test("the cross-node fast-path row carries traffic while its nodes' forward hooks drop TCP and UDP: every packet took the programs; it brings its baseline", () => {
  const out = oneRound("hand-hostgw-fastpath");
  expect(out.rows.map((r: any) => r.key)).toEqual(["hand-nodes", "hand-hostgw-fastpath"]);
  const row = out.rows[1];
  expect(row.baseline).toBe("hand-nodes");
  expect(row.median.tcp1).toBeGreaterThan(0.5);
  expect(row.median.udp1400).toBeGreaterThan(0);
  expect(row.median.rrP50).toBeGreaterThan(0);
  expect(row.rrRatio.med).toBeGreaterThan(0);
});
