import { describe, expect, test } from "bun:test";
import { Attrs, Writer } from "../../src/kernel/codec.ts";
import { formatCIDR, formatIP, formatMAC, parseCIDR, parseIP, parseMAC, tryParseIP } from "../../src/net/ip.ts";
import { broadcastOf, maskCIDR, normalizeIP } from "../../src/net/cidr.ts";

describe("addresses", () => {
  test.each([
    ["10.1.2.3", 4, "10.1.2.3"],
    ["0.0.0.0", 4, "0.0.0.0"],
    ["fd00::5", 6, "fd00::5"],
    ["FD00:0:0:0:0:0:0:5", 6, "fd00::5"],
    ["::", 6, "::"],
    ["::1", 6, "::1"],
    ["fe80::1:0:0:1", 6, "fe80::1:0:0:1"],
    ["1:0:0:2:0:0:0:3", 6, "1:0:0:2::3"], // the longest zero run is compressed
    ["1:0:2:3:4:5:6:7", 6, "1:0:2:3:4:5:6:7"], // a single zero word is not
    ["::ffff:10.1.2.3", 6, "::ffff:10.1.2.3"],
    ["2001:db8::a:b:c:d", 6, "2001:db8::a:b:c:d"],
  ] as const)("%s", (input, family, formatted) => {
    const ip = parseIP(input);
    expect(ip.family).toBe(family);
    expect(ip.bytes.length).toBe(family === 4 ? 4 : 16);
    expect(formatIP(ip.bytes)).toBe(formatted);
  });

  test.each(["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "g::1", "1:2:3:4:5:6:7::8:9"])(
    "rejects %p",
    (bad) => {
      expect(tryParseIP(bad)).toBeUndefined();
      expect(() => parseIP(bad)).toThrow(TypeError);
    },
  );

  test("family check", () => {
    expect(() => parseIP("10.0.0.1", 6)).toThrow('expected an IPv6 address');
  });
});

describe("CIDRs", () => {
  test("parse, mask, format, broadcast", () => {
    const c = parseCIDR("10.1.2.3/20");
    expect(c.prefixLen).toBe(20);
    expect(formatCIDR(maskCIDR(c).bytes, 20)).toBe("10.1.0.0/20");
    expect(formatIP(broadcastOf(c))).toBe("10.1.15.255");
    expect(formatCIDR(maskCIDR(parseCIDR("fd00::5:1/113")).bytes, 113)).toBe("fd00::5:0/113");
    expect(parseCIDR("fd00::1").prefixLen).toBe(128);
    expect(() => parseCIDR("10.0.0.0/33")).toThrow(TypeError);
    expect(() => parseCIDR("10.0.0.0/x")).toThrow(TypeError);
  });
});

test("MACs", () => {
  expect(formatMAC(parseMAC("02:AB:0:ff:10:1"))).toBe("02:ab:00:ff:10:01");
  for (let b = 0; b < 256; b++) expect(formatMAC(Uint8Array.of(b, 255 - b))).toBe(`${b.toString(16).padStart(2, "0")}:${(255 - b).toString(16).padStart(2, "0")}`);
  expect(() => parseMAC("02-ab")).toThrow(TypeError);
});

test("attributes are 4-byte aligned, nested, and read back", () => {
  const w = new Writer(16); // tiny on purpose: the writer grows
  w.begin(16, 1, 7);
  w.attrStr(3, "eth0"); // 4+5 bytes -> padded to 12
  const n = w.nestStart(18);
  w.attrU8(7, 1).attrBe16(15, 4789).attrU32(1, 42);
  w.nestEnd(n);
  const len = w.finish();
  expect(len % 4).toBe(0);
  expect(w.buf.readUInt32LE(0)).toBe(len);
  const buf = Buffer.from(w.buf.subarray(0, len));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const a = new Attrs(buf, dv, 16, len);
  expect(a.str(3)).toBe("eth0");
  const inner = a.nested(18)!;
  expect([inner.u8(7), inner.be16(15), inner.u32(1)]).toEqual([1, 4789, 42]);
  expect(buf.readUInt16BE(16 + 12 + 4 + 8 + 4)).toBe(4789);
  expect(a.u32(99)).toBeUndefined();
});

describe("text styles", () => {
  // host-local names reservation files with Go's net.IP.String(): no dotted IPv4 tail. (Go prints
  // an IPv4-mapped address as IPv4; the IPAM turns those into IPv4 before it formats them.)
  test.each([
    ["::1.2.3.4", "::1.2.3.4", "::102:304"],
    ["fd00::5", "fd00::5", "fd00::5"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3", "1:0:0:2::3"],
  ] as const)("%s", (input, glibc, go) => {
    const ip = parseIP(input);
    expect(formatIP(ip.bytes, 6)).toBe(glibc);
    expect(formatIP(ip.bytes, 6, "go")).toBe(go);
  });
});

describe("normalizeIP", () => {
  test.each([
    ["10.1.2.3", "10.1.2.3"],
    ["0.0.0.0", "0.0.0.0"],
    ["255.255.255.255", "255.255.255.255"],
    ["010.1.2.3", undefined],
    ["10.1.2", undefined],
    ["10.1.2.3.4", undefined],
    ["10.1.2.256", undefined],
    ["10.1..3", undefined],
    ["", undefined],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["::ffff:10.1.2.3", "::ffff:10.1.2.3"],
    ["2001:db8::1::2", undefined],
  ])("%p -> %p (IPv4 checked without a buffer per call, IPv6 formatted)", (input, want) => {
    expect(normalizeIP(input)).toBe(want);
  });
});
