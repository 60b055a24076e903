import { describe, expect, test } from "bun:test";
import { formatIp, lastOf, networkOf, parseCidr, parseIp } from "../../src/ipam/ip-bigint.ts";

describe("ip", () => {
  test("round-trips to Go's canonical text (host-local file names)", () => {
    const cases: [string, string][] = [
      ["10.0.0.1", "10.0.0.1"],
      ["255.255.255.255", "255.255.255.255"],
      ["FD00:0:0:0:0:0:0:1", "fd00::1"],
      ["fd00:0000:0000:1:0:0:0:0", "fd00:0:0:1::"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is not compressed
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], // the longest run wins
      ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"], // first on a tie
      ["::", "::"],
      ["::1", "::1"],
      ["64:ff9b::1.2.3.4", "64:ff9b::102:304"],
    ];
    for (const [input, want] of cases) expect(formatIp(parseIp(input)!)).toBe(want);
  });

  test("refuses malformed addresses", () => {
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.-1", "fd00::1::2", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "fd00::g", "12345::", "../etc", "1.2.3.4/24"]) {
      expect(parseIp(bad)).toBeUndefined();
    }
  });

  test("CIDR math is the same for both families", () => {
    const v4 = parseCidr("10.1.2.3/16")!;
    expect(formatIp({ family: 4, value: networkOf(v4.ip, v4.prefix) })).toBe("10.1.0.0");
    expect(formatIp({ family: 4, value: lastOf(v4.ip, v4.prefix) })).toBe("10.1.255.255");
    const v6 = parseCidr("fd00:1:2:3::5/64")!;
    expect(formatIp({ family: 6, value: networkOf(v6.ip, v6.prefix) })).toBe("fd00:1:2:3::");
    expect(formatIp({ family: 6, value: lastOf(v6.ip, v6.prefix) })).toBe("fd00:1:2:3:ffff:ffff:ffff:ffff");
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("fd00::/129")).toBeUndefined();
    expect(parseCidr("10.0.0.0")).toBeUndefined();
  });
});
