import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { cleanupNetns, createNetns, inNetns, ipJson, netnsPath } from "../helpers/netns.ts";
import { Netlink, NetlinkError, openNetnsFd, sysctlGet, sysctlSet, withNetns } from "../../src/kernel/index.ts";
import { netlinkError } from "./fixture.ts";

let A: string;
let B: string;
const self = () => statSync("/proc/thread-self/ns/net").ino;
const inoOf = (ns: string) => statSync(netnsPath(ns)).ino;
let home: number;

beforeAll(() => {
  A = createNetns("mnk");
  B = createNetns("mnk");
  home = self();
});
afterAll(() => cleanupNetns());

describe("withNetns", () => {
  test("runs fn inside the namespace and returns its value", () => {
    expect(inoOf(A)).not.toBe(home);
    expect(withNetns(netnsPath(A), () => self())).toBe(inoOf(A));
    expect(self()).toBe(home);
  });

  test("nests", () => {
    const seen = withNetns(netnsPath(A), () => [self(), withNetns(netnsPath(B), () => self()), self()]);
    expect(seen).toEqual([inoOf(A), inoOf(B), inoOf(A)]);
    expect(self()).toBe(home);
  });

  test("restores when fn throws, and rethrows", () => {
    const boom = new Error("boom");
    expect(() => withNetns(netnsPath(A), () => { throw boom; })).toThrow(boom);
    expect(self()).toBe(home);
  });

  test("rejects async functions after restoring", () => {
    let inside = 0;
    expect(() => withNetns(netnsPath(A), async () => { inside = self(); })).toThrow(TypeError);
    expect(inside).toBe(inoOf(A)); // the synchronous part did run inside
    expect(self()).toBe(home);
  });

  test("a missing namespace is ENOENT and leaves us home", () => {
    const missing = "/run/netns/mnk-does-not-exist";
    expect(netlinkError(() => openNetnsFd(missing)).code).toBe("ENOENT");
    expect(netlinkError(() => withNetns(missing, () => 1)).code).toBe("ENOENT");
    expect(netlinkError(() => Netlink.open(missing)).code).toBe("ENOENT");
    expect(self()).toBe(home);
  });

  test("a socket opened for a namespace acts there, without setns", () => {
    const nl = Netlink.open(netnsPath(A));
    try {
      expect(self()).toBe(home);
      nl.addBridge({ name: "brA" });
      expect(ipJson(A, ["link", "show", "dev", "brA"])).toHaveLength(1);
      expect(ipJson(B, ["link", "show"]).map((l: any) => l.ifname)).not.toContain("brA");
    } finally {
      nl.close();
    }
  });
});

describe("sysctl", () => {
  test("get and set inside a namespace only", () => {
    const rootForward = sysctlGet("net.ipv4.ip_forward");
    // A new namespace starts with the root's IPv4 forwarding (on, on any Kubernetes node):
    // start both from 0, set inside them, never in the root namespace.
    for (const n of [A, B]) inNetns(n, ["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
    expect(withNetns(netnsPath(A), () => sysctlGet("net.ipv4.ip_forward"))).toBe("0");
    withNetns(netnsPath(A), () => sysctlSet("net.ipv4.ip_forward", 1));
    expect(inNetns(A, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
    expect(inNetns(B, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("0");
    expect(sysctlGet("net.ipv4.ip_forward")).toBe(rootForward);
    withNetns(netnsPath(A), () => sysctlSet("net/ipv4/conf/lo/rp_filter", "2"));
    expect(inNetns(A, ["sysctl", "-n", "net.ipv4.conf.lo.rp_filter"]).stdout.trim()).toBe("2");
  });

  test("an equal value is not written (a read-only sysctl proves it)", () => {
    withNetns(netnsPath(A), () => {
      const ro = "net.ipv4.conf.all.mc_forwarding"; // mode 0444
      sysctlSet(ro, sysctlGet(ro));
      expect(netlinkError(() => sysctlSet(ro, "7")).code).toBe("EACCES");
    });
  });

  test("a missing sysctl is ENOENT; bad names are rejected", () => {
    const e = netlinkError(() => sysctlGet("net.ipv4.no_such_thing"));
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe("ENOENT");
    expect(e.message).toBe('cannot read sysctl "net.ipv4.no_such_thing": ENOENT');
    expect(() => sysctlGet("net/../../etc/passwd")).toThrow(TypeError);
  });
});

test("works from a process that itself runs in a non-root namespace", () => {
  const node = createNetns("mnk");
  const pod = createNetns("mnk");
  // The pod's forwarding must not follow the node's (whatever the root's start value is).
  inNetns(pod, ["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
  const bun = resolve(import.meta.dir, "../../node_modules/.bin/bun");
  const out = JSON.parse(inNetns(node, [bun, resolve(import.meta.dir, "scripts/node-ns.ts"), netnsPath(pod)]).stdout);
  expect(out.before).toBe(inoOf(node));
  expect(out.after).toBe(inoOf(node));
  expect(out.inPod).toEqual({ ino: inoOf(pod), forward: "0" });
  expect(ipJson(node, ["link", "show", "dev", "hv0"])[0]).toMatchObject({ mtu: 1450, operstate: "UP" });
  expect(ipJson(pod, ["addr", "show", "dev", "eth0"])[0].addr_info.map((a: any) => a.local)).toContain("10.88.0.2");
  expect(ipJson(pod, ["route", "show", "default"])[0]).toMatchObject({ gateway: "10.88.0.1", dev: "eth0", flags: ["onlink"] });
  expect(inNetns(node, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.trim()).toBe("1");
  expect(inNetns(pod, ["sysctl", "-n", "net.ipv4.conf.eth0.rp_filter"]).stdout.trim()).toBe("2");
});
