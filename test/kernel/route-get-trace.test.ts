// RTM_GETROUTE (the route the kernel picks for one packet) and nftables trace events read
// over NFNLGRP_NFTRACE, checked against `ip -j route get` and a real ping with nftrace set.
import { afterAll, expect, test } from "bun:test";
import { TraceListener } from "../../src/kernel/index.ts";
import { cleanupNetns as cleanup, run } from "../helpers/netns.ts";
import { netlinkError, testNs, vethPair } from "./fixture.ts";

afterAll(() => cleanup());

test("getRoute answers as `ip route get` does, from a given source and arriving on an interface", () => {
  const ns = testNs();
  const { a } = vethPair(ns, "ga", "gb");
  ns.nl.addAddr(a, "10.77.0.1/24");
  ns.nl.addRoute({ dst: "10.88.0.0/16", gw: "10.77.0.9" });
  const r = ns.nl.getRoute({ dst: "10.88.1.2" });
  const ip = JSON.parse(run(["ip", "-n", ns.name, "-j", "route", "get", "10.88.1.2"]).stdout)[0];
  expect(r.gw).toBe(ip.gateway);
  expect(r.oif).toBe(a);
  expect(r.src).toBe(ip.prefsrc);
  expect(r.type).toBe("unicast");
  expect(ns.nl.getRoute({ dst: "10.77.0.1" }).type).toBe("local");
  // No route: the kernel's errno, not a guess.
  expect(netlinkError(() => ns.nl.getRoute({ dst: "192.0.2.1" })).code).toBe("ENETUNREACH");
  ns.nl.close();
});

test("trace events of a packet with nftrace set name the table, chain, rule and verdict", () => {
  const ns = testNs();
  const { a } = vethPair(ns, "ta", "tb");
  ns.nl.addAddr(a, "10.66.0.1/24");
  run(["ip", "netns", "exec", ns.name, "nft", "-f", "-"], {
    stdin: `table inet mncni-ttest {
      chain out { type filter hook output priority -400; ip daddr 10.66.0.7 meta nftrace set 1; }
      chain filt { type filter hook output priority 0; ip daddr 10.66.0.7 icmp type echo-request drop; }
    }`,
  } as never);
  using tl = TraceListener.open(ns.path);
  run(["ip", "netns", "exec", ns.name, "ping", "-c1", "-W1", "10.66.0.7"], { allowFail: true });
  const evs = tl.read(300);
  const handles = JSON.parse(run(["ip", "netns", "exec", ns.name, "nft", "-j", "-a", "list", "chain", "inet", "mncni-ttest", "filt"]).stdout).nftables.filter((x: any) => x.rule).map((x: any) => BigInt(x.rule.handle));
  const drop = evs.find((e) => e.chain === "filt" && e.type === "rule");
  expect(drop).toMatchObject({ family: "inet", table: "mncni-ttest", verdict: "drop" });
  expect(drop!.handle).toBe(handles[0]);
  expect(evs.every((e) => e.id === evs[0]!.id)).toBe(true);
  ns.nl.close();
});
