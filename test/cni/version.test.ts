// Result conversion: one full 1.1.0 result written in every supported version (exactly what
// each version keeps and drops) and read back through fromWire.
import { describe, expect, test } from "bun:test";
import { ErrorCode } from "../../src/cni/errors.ts";
import { SUPPORTED_VERSIONS, type Result } from "../../src/cni/types.ts";
import { compareVersions, CURRENT_VERSION, fromWire, toWire } from "../../src/cni/version.ts";
import { cniErrorOf } from "./helpers.ts";

const NETNS = "/run/netns/pod1";
const FULL: Result = Object.freeze({
  cniVersion: "1.1.0",
  interfaces: [
    { name: "cbr0", mac: "02:42:0a:f4:01:01", mtu: 1500 },
    { name: "eth0", mac: "02:42:0a:f4:01:05", mtu: 1450, sandbox: NETNS },
  ],
  ips: [
    { address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 1 },
    { address: "fd00:10:244:1::5/64", gateway: "fd00:10:244:1::1", interface: 1 },
  ],
  routes: [
    { dst: "0.0.0.0/0", gw: "10.244.1.1", mtu: 1400, advmss: 1360, priority: 100, table: 254, scope: 0 },
    { dst: "::/0", gw: "fd00:10:244:1::1", priority: 50, table: 100 },
    { dst: "10.96.0.0/12", scope: 253 },
  ],
  dns: { nameservers: ["10.96.0.10"], domain: "cluster.local", search: ["default.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5"] },
}) as Result;

const DNS = FULL.dns!;

// Legacy 0.1.0/0.2.0: one block per family, no interfaces, routes split by family, dst/gw only.
const LEGACY_WIRE = {
  ip4: {
    ip: "10.244.1.5/24",
    gateway: "10.244.1.1",
    routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }, { dst: "10.96.0.0/12" }],
  },
  ip6: { ip: "fd00:10:244:1::5/64", gateway: "fd00:10:244:1::1", routes: [{ dst: "::/0", gw: "fd00:10:244:1::1" }] },
  dns: DNS,
};
const LEGACY_BACK = {
  ips: [
    { address: "10.244.1.5/24", gateway: "10.244.1.1" },
    { address: "fd00:10:244:1::5/64", gateway: "fd00:10:244:1::1" },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }, { dst: "10.96.0.0/12" }, { dst: "::/0", gw: "fd00:10:244:1::1" }],
  dns: DNS,
};

// 0.3.x/0.4.0: interfaces without mtu, ips with "version", routes with dst/gw only.
const V03_INTERFACES = [
  { name: "cbr0", mac: "02:42:0a:f4:01:01" },
  { name: "eth0", mac: "02:42:0a:f4:01:05", sandbox: NETNS },
];
const V03_ROUTES = [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }, { dst: "::/0", gw: "fd00:10:244:1::1" }, { dst: "10.96.0.0/12" }];
const V03_WIRE = {
  interfaces: V03_INTERFACES,
  ips: [
    { version: "4", address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 1 },
    { version: "6", address: "fd00:10:244:1::5/64", gateway: "fd00:10:244:1::1", interface: 1 },
  ],
  routes: V03_ROUTES,
  dns: DNS,
};
const V03_BACK = { interfaces: V03_INTERFACES, ips: FULL.ips, routes: V03_ROUTES, dns: DNS };

// 1.0.0/1.1.0 carry everything.
const V1 = { interfaces: FULL.interfaces, ips: FULL.ips, routes: FULL.routes, dns: DNS };

const CASES: Record<string, { wire: object; back: object }> = {
  "0.1.0": { wire: LEGACY_WIRE, back: LEGACY_BACK },
  "0.2.0": { wire: LEGACY_WIRE, back: LEGACY_BACK },
  "0.3.0": { wire: V03_WIRE, back: V03_BACK },
  "0.3.1": { wire: V03_WIRE, back: V03_BACK },
  "0.4.0": { wire: V03_WIRE, back: V03_BACK },
  "1.0.0": { wire: V1, back: V1 },
  "1.1.0": { wire: V1, back: V1 },
};

test("every supported version has a case", () => {
  expect(Object.keys(CASES)).toEqual([...SUPPORTED_VERSIONS]);
  expect(CURRENT_VERSION).toBe("1.1.0");
});

describe.each(Object.keys(CASES))("version %s", (v) => {
  const { wire, back } = CASES[v]!;
  test("toWire keeps and drops exactly what the version defines", () => {
    // Through JSON, as it goes on stdout: no undefined-valued keys may survive.
    expect(JSON.parse(JSON.stringify(toWire(FULL, v)))).toStrictEqual({ cniVersion: v, ...wire });
  });
  test("fromWire reads it back into the 1.x shape", () => {
    expect(fromWire(JSON.parse(JSON.stringify(toWire(FULL, v))))).toStrictEqual({ cniVersion: v, ...back });
  });
  test("a second round trip changes nothing more", () => {
    const once = fromWire(toWire(FULL, v));
    expect(fromWire(toWire(once, v))).toStrictEqual(once);
  });
});

test("toWire does not modify its input", () => {
  const copy = structuredClone(FULL);
  for (const v of SUPPORTED_VERSIONS) toWire(FULL, v);
  expect(FULL).toStrictEqual(copy);
});

test("legacy versions keep only the first address of each family", () => {
  const r: Result = {
    cniVersion: "1.1.0",
    ips: [{ address: "10.0.0.2/24" }, { address: "10.0.1.2/24" }, { address: "fd00::2/64" }, { address: "fd00:1::2/64" }],
    routes: [{ dst: "0.0.0.0/0" }],
  };
  expect(toWire(r, "0.2.0")).toStrictEqual({ cniVersion: "0.2.0", ip4: { ip: "10.0.0.2/24", routes: [{ dst: "0.0.0.0/0" }] }, ip6: { ip: "fd00::2/64" } });
});

test("legacy versions drop routes of a family without an address (nowhere to put them)", () => {
  const r: Result = { cniVersion: "1.1.0", ips: [{ address: "10.0.0.2/24" }], routes: [{ dst: "::/0" }, { dst: "0.0.0.0/0" }] };
  expect(toWire(r, "0.1.0")).toStrictEqual({ cniVersion: "0.1.0", ip4: { ip: "10.0.0.2/24", routes: [{ dst: "0.0.0.0/0" }] } });
});

test("an IPAM-style result (no interfaces) and an empty result convert in every version", () => {
  const ipam: Result = { cniVersion: "1.1.0", ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }] };
  for (const v of SUPPORTED_VERSIONS) {
    const back = fromWire(JSON.parse(JSON.stringify(toWire(ipam, v))));
    expect(back).toStrictEqual({ ...ipam, cniVersion: v });
    expect(fromWire(toWire({ cniVersion: "1.1.0" }, v))).toStrictEqual({ cniVersion: v });
  }
});

test("empty dns and empty lists are omitted (the reference's omitempty)", () => {
  for (const v of SUPPORTED_VERSIONS) {
    expect(toWire({ cniVersion: "1.1.0", interfaces: [], ips: [], routes: [], dns: {} }, v)).toStrictEqual({ cniVersion: v });
  }
});

test("toWire and fromWire refuse unsupported versions with code 1", () => {
  for (const v of ["0.5.0", "1.2.0", ""]) {
    const e = cniErrorOf(() => toWire(FULL, v));
    expect(e.code).toBe(ErrorCode.IncompatibleVersion);
    expect(e.details).toContain("1.1.0");
    expect(cniErrorOf(() => fromWire({ cniVersion: v || 3 })).code).toBe(ErrorCode.IncompatibleVersion);
  }
});

test("fromWire takes the given config version when the result has none", () => {
  expect(fromWire({ ips: [{ version: "4", address: "10.0.0.2/24" }] }, "result", "0.4.0")).toStrictEqual({ cniVersion: "0.4.0", ips: [{ address: "10.0.0.2/24" }] });
  expect(cniErrorOf(() => fromWire({ ips: [] })).code).toBe(ErrorCode.IncompatibleVersion);
});

test("compareVersions orders numerically", () => {
  expect(compareVersions("0.10.0", "0.4.0")).toBeGreaterThan(0);
  expect(compareVersions("0.3.1", "0.4.0")).toBeLessThan(0);
  expect(compareVersions("1.1.0", "1.1.0")).toBe(0);
  const sorted = [...SUPPORTED_VERSIONS].sort(compareVersions);
  expect(sorted).toEqual([...SUPPORTED_VERSIONS]);
});
