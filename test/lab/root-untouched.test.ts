// "Nothing is connected to the machine's root namespace": the root namespace's links,
// addresses, routes (IPv4 and IPv6, every table), nftables ruleset and forwarding sysctls are
// the same before and after a whole lab life (up dual-stack, check, pod add, node add, down).
// Read only: nothing here changes the root namespace.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { cleanupNetns, createNetns, run } from "../helpers/netns.ts";
import { WIRING, downAll, lab, leftovers, newLabName } from "./lab-cli.ts";

setDefaultTimeout(120_000);
afterAll(downAll);

const SYSCTLS = [
  "net/ipv4/ip_forward",
  "net/ipv4/conf/all/forwarding",
  "net/ipv4/conf/default/forwarding",
  "net/ipv4/conf/all/rp_filter",
  "net/ipv4/conf/default/rp_filter",
  "net/ipv4/conf/all/route_localnet",
  "net/ipv6/conf/all/forwarding",
  "net/ipv6/conf/default/forwarding",
  "net/ipv6/conf/all/disable_ipv6",
  "net/ipv4/neigh/default/gc_thresh3",
];

/** Values that change by themselves (lifetimes counting down) are left out. */
const stable = (json: string) => JSON.parse(json, (k, v) => (/life_time|expires|^stats/.test(k) ? undefined : v));

/** The network state of the root namespace, or of a test namespace (the control case). */
function networkOf(netns?: string) {
  const inside = (argv: string[]) => (netns ? ["ip", "netns", "exec", netns, ...argv] : argv);
  const ip = (...args: string[]) => stable(run(["ip", ...(netns ? ["-n", netns] : []), "-j", ...args]).stdout || "[]");
  return {
    links: ip("link", "show"),
    addresses: ip("addr", "show"),
    routes4: ip("-4", "route", "show", "table", "all"),
    routes6: ip("-6", "route", "show", "table", "all"),
    rules4: ip("-4", "rule", "show"),
    rules6: ip("-6", "rule", "show"),
    nft: stable(run(inside(["nft", "-j", "list", "ruleset"])).stdout || "{}"),
    sysctls: Object.fromEntries(
      SYSCTLS.map((k) => [k, netns ? run(inside(["cat", `/proc/sys/${k}`]), { allowFail: true }).stdout.trim() : readFileSync(`/proc/sys/${k}`, "utf8").trim()]),
    ),
  };
}

test("control: the comparison sees each kind of change (made in a test namespace)", () => {
  const n = createNetns("mnlroot");
  try {
    const before = networkOf(n);
    run(["ip", "-n", n, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    run(["ip", "-n", n, "link", "set", "v0", "up"]);
    run(["ip", "-n", n, "addr", "add", "192.0.2.1/24", "dev", "v0"]);
    run(["ip", "-n", n, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "v0", "nodad"]);
    run(["ip", "-n", n, "route", "add", "198.51.100.0/24", "via", "192.0.2.2"]);
    run(["ip", "-n", n, "rule", "add", "from", "192.0.2.0/24", "table", "7"]);
    run(["ip", "netns", "exec", n, "nft", "add", "table", "inet", "mnlcontrol"]);
    run(["ip", "netns", "exec", n, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"]);
    const after = networkOf(n);
    for (const k of ["links", "addresses", "routes4", "routes6", "rules4", "nft", "sysctls"] as const) expect(after[k]).not.toEqual(before[k]);
  } finally {
    cleanupNetns();
  }
});

test("a lab's whole life leaves the root namespace's network as it was", () => {
  const before = networkOf();
  const name = newLabName();
  lab(name, ["up", "-q", "--nodes", "2", "--pods-per-node", "1", "--ipv6", "--wiring", WIRING]);
  lab(name, ["check"]);
  lab(name, ["pod", "add", "node1"]);
  lab(name, ["node", "add", "-q", "--pods", "1"]);
  lab(name, ["check"]);
  // While the lab runs, the root namespace already must not see any of it.
  const during = networkOf();
  lab(name, ["down", "-q"]);
  expect(leftovers(name)).toEqual([]);
  const after = networkOf();
  expect(during).toEqual(before);
  expect(after).toEqual(before);
});
