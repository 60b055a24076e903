// Shared setup for the kernel tests: throwaway namespaces (prefix "mnk") with a Netlink
// socket bound to each, and an independent view of them through iproute2.
import { createNetns, netnsPath, run } from "../helpers/netns.ts";
import { Netlink, NetlinkError } from "../../src/kernel/index.ts";

export interface TestNs {
  name: string;
  path: string;
  nl: Netlink;
}

export function testNs(): TestNs {
  const name = createNetns("mnk");
  const path = netnsPath(name);
  return { name, path, nl: Netlink.open(path) };
}

/** A veth pair a/b, both up, inside ns (the test machine has no dummy links). */
export function vethPair(ns: TestNs, a: string, b: string): { a: number; b: number } {
  ns.nl.addVeth({ name: a, peerName: b });
  const ia = ns.nl.link(a)!.index;
  const ib = ns.nl.link(b)!.index;
  ns.nl.setLink(ia, { up: true });
  ns.nl.setLink(ib, { up: true });
  return { a: ia, b: ib };
}

export function bridgeJson<T = any>(ns: string, args: string[]): T {
  const out = run(["bridge", "-n", ns, "-j", ...args]).stdout.trim();
  return (out ? JSON.parse(out) : []) as T;
}

/** The NetlinkError fn throws; fails the test when it throws nothing or something else. */
export function netlinkError(fn: () => unknown): NetlinkError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NetlinkError) return e;
    throw e;
  }
  throw new Error("expected a NetlinkError, nothing was thrown");
}
