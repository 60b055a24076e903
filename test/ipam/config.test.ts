import { describe, expect, test } from "bun:test";
import { CniError } from "../../src/cni/errors.ts";
import { parseIpamConfig } from "../../src/ipam/index.ts";

function errorOf(ipam: unknown, field?: string): CniError {
  try {
    parseIpamConfig(ipam, field);
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error("expected parseIpamConfig to fail");
}

const T = "mncni-ipam";

describe("parseIpamConfig", () => {
  test("fills host-local's defaults for IPv4 and IPv6", () => {
    const c = parseIpamConfig({ type: T, ranges: [[{ subnet: "10.1.0.0/24" }], [{ subnet: "fd00:a::/64" }]] });
    expect(c.ranges).toEqual([
      [{ subnet: "10.1.0.0/24", rangeStart: "10.1.0.1", rangeEnd: "10.1.0.254", gateway: "10.1.0.1" }],
      [{ subnet: "fd00:a::/64", rangeStart: "fd00:a::1", rangeEnd: "fd00:a::ffff:ffff:ffff:ffff", gateway: "fd00:a::1" }],
    ]);
    expect(c.dataDir).toBe("/var/lib/cni/networks");
    expect(c.routes).toEqual([]);
    expect(Object.isFrozen(c) && Object.isFrozen(c.ranges[0][0])).toBe(true);
  });

  test("keeps explicit values, canonicalized, and ignores unknown fields", () => {
    const c = parseIpamConfig({
      type: T,
      ranges: [[{ subnet: "FD00:B::/120", rangeStart: "fd00:b::0010", rangeEnd: "fd00:b::20", gateway: "fd00:b::fe", extra: 1 }]],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "fd00::/8", gw: "fd00:b::fe", priority: 5 }],
      dataDir: "/tmp/x",
      resolvConf: "/etc/resolv.conf",
      whatever: true,
    });
    expect(c.ranges[0][0]).toEqual({ subnet: "fd00:b::/120", rangeStart: "fd00:b::10", rangeEnd: "fd00:b::20", gateway: "fd00:b::fe" });
    expect(c.routes[1]).toEqual({ dst: "fd00::/8", gw: "fd00:b::fe", priority: 5 });
    expect(c.resolvConf).toBe("/etc/resolv.conf");
  });

  test("the legacy single range becomes range set 0", () => {
    const c = parseIpamConfig({ type: T, subnet: "10.2.0.0/16", rangeStart: "10.2.1.0", gateway: "10.2.0.254", ranges: [[{ subnet: "fd00::/64" }]] });
    expect(c.ranges.length).toBe(2);
    expect(c.ranges[0][0]).toEqual({ subnet: "10.2.0.0/16", rangeStart: "10.2.1.0", rangeEnd: "10.2.255.254", gateway: "10.2.0.254" });
  });

  test("errors are code 7 and name the field", () => {
    const cases: [unknown, string][] = [
      [undefined, "ipam: missing"],
      [{ ranges: [[{ subnet: "10.0.0.0/24" }]] }, "ipam.type: missing"],
      [{ type: T }, "ipam.ranges: no IP ranges specified"],
      [{ type: T, ranges: {} }, "ipam.ranges: must be an array"],
      [{ type: T, ranges: [[]] }, "ipam.ranges[0]: must be a non-empty array"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "nope" }]] }, `ipam.ranges[0][1].subnet: "nope" is not a CIDR`],
      [{ type: T, ranges: [[{}]] }, "ipam.ranges[0][0].subnet: missing"],
      [{ type: T, ranges: [[{ subnet: 5 }]] }, "ipam.ranges[0][0].subnet: must be a string"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.1/24" }]] }, "ipam.ranges[0][0].subnet: \"10.0.0.1/24\" has host bits set (the network address is 10.0.0.0)"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/31" }]] }, "ipam.ranges[0][0].subnet: \"10.0.0.0/31\" is too small"],
      [{ type: T, ranges: [[{ subnet: "fd00::/127" }]] }, "ipam.ranges[0][0].subnet: \"fd00::/127\" is too small"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.1.1" }]] }, "ipam.ranges[0][0].rangeStart: 10.0.1.1 is not in subnet 10.0.0.0/24"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "fd00::1" }]] }, "ipam.ranges[0][0].rangeEnd: fd00::1 is not in subnet"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.8" }]] }, "ipam.ranges[0][0].rangeStart: 10.0.0.9 is after rangeEnd 10.0.0.8"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24", gateway: "x" }]] }, `ipam.ranges[0][0].gateway: "x" is not an IP address`],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24", gateway: "fd00::1" }]] }, "ipam.ranges[0][0].gateway: fd00::1 is not of the family"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] }, "ipam.ranges[0][1].subnet: mixes IPv6 into an IPv4 range set"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/25" }]] }, "ipam.ranges[0][1]: overlaps ipam.ranges[0][0]"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.128/25" }]] }, "ipam.ranges[1]: overlaps ipam.ranges[0]"],
      [{ type: T, subnet: "10.0.0.0/16", ranges: [[{ subnet: "10.0.5.0/24" }]] }, "ipam.ranges[0]: overlaps ipam"],
      [{ type: T, subnet: "10.0.0.0/33" }, "ipam.subnet: \"10.0.0.0/33\" is not a CIDR"],
      [{ type: T, ranges: [[{ subnet: "::ffff:10.0.0.0/120" }]] }, "IPv4-mapped"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "x" }] }, `ipam.routes[0].dst: "x" is not a CIDR`],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "0.0.0.0/0", gw: "y" }] }, `ipam.routes[0].gw: "y" is not an IP address`],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }]], routes: [{ dst: "0.0.0.0/0", mtu: -1 }] }, "ipam.routes[0].mtu"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }]], dataDir: "relative/dir" }, "ipam.dataDir: \"relative/dir\" is not an absolute path"],
      [{ type: T, ranges: [[{ subnet: "10.0.0.0/24" }]], dns: { nameservers: ["x"] } }, "ipam.dns.nameservers[0]"],
    ];
    for (const [ipam, msg] of cases) {
      const e = errorOf(ipam);
      expect(e.code).toBe(7);
      expect(e.message).toContain(msg);
    }
  });

  test("the field prefix is a parameter", () => {
    expect(errorOf({ type: T, ranges: [[{ subnet: "bad" }]] }, "plugins[0].ipam").message).toContain("plugins[0].ipam.ranges[0][0].subnet");
  });
});
