// parseNetConf: the generic part of the config on stdin. Decoding errors (6), missing or
// unsupported versions (7 / 1), verbs newer than the config's version (1), names, sections,
// prevResult of every version into the 1.x shape, and cni.dev/valid-attachments.
import { describe, expect, test } from "bun:test";
import { parseNetConf } from "../../src/cni/config.ts";
import { ErrorCode } from "../../src/cni/errors.ts";
import { SUPPORTED_VERSIONS, type CniCommand, type Result } from "../../src/cni/types.ts";
import { bytes, cniErrorOf } from "./helpers.ts";

const BASE = { cniVersion: "1.1.0", name: "testnet", type: "mncni" };
const parse = (conf: object | string, cmd: CniCommand = "ADD") => parseNetConf(bytes(conf), cmd);
const errorOf = (conf: object | string, cmd: CniCommand = "ADD") => cniErrorOf(() => parse(conf, cmd));

describe("decoding", () => {
  test.each(["", "   \n", "{", '{"cniVersion":"1.1.0",}', "nul", "\u00ff\u00fe"])("%p is code 6", (text) => {
    const e = errorOf(text);
    expect(e.code).toBe(ErrorCode.DecodingFailure);
    expect(e.message).toStartWith("cannot decode network config");
  });
  test.each(["[]", '"a string"', "42", "null", "true"])("JSON %s that is not an object is code 6", (text) => {
    const e = errorOf(text);
    expect(e.code).toBe(ErrorCode.DecodingFailure);
    expect(e.message).toContain("not a JSON object");
  });
});

describe("cniVersion", () => {
  test("missing is code 7 naming cniVersion", () => {
    const e = errorOf({ name: "n", type: "t" });
    expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(e.message).toContain("cniVersion");
  });
  test.each([["0.5.0"], ["2.0.0"], ["1.1"], [""], [1.1], [null]])("unsupported %p is code 1 and details list every supported version", (v) => {
    const e = errorOf({ ...BASE, cniVersion: v });
    expect(e.code).toBe(ErrorCode.IncompatibleVersion);
    expect(e.details).toBe(`supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
    for (const s of SUPPORTED_VERSIONS) expect(e.details).toContain(s);
  });
  test.each([...SUPPORTED_VERSIONS])("ADD and DEL accept %s", (v) => {
    expect(parse({ ...BASE, cniVersion: v }, "ADD").cniVersion).toBe(v);
    expect(parse({ ...BASE, cniVersion: v }, "DEL").cniVersion).toBe(v);
  });

  // The verb exists only from some spec version on; an older config cannot ask for it.
  const MIN: [CniCommand, string][] = [["CHECK", "0.4.0"], ["STATUS", "1.1.0"], ["GC", "1.1.0"]];
  test.each(MIN)("%s needs %s or later (code 1 before)", (cmd, min) => {
    for (const v of SUPPORTED_VERSIONS) {
      const older = SUPPORTED_VERSIONS.indexOf(v) < SUPPORTED_VERSIONS.indexOf(min as (typeof SUPPORTED_VERSIONS)[number]);
      if (older) {
        const e = errorOf({ ...BASE, cniVersion: v }, cmd);
        expect(e.code).toBe(ErrorCode.IncompatibleVersion);
        expect(e.message).toContain(cmd);
        expect(e.message).toContain(min);
      } else {
        expect(parse({ ...BASE, cniVersion: v }, cmd).cniVersion).toBe(v);
      }
    }
  });
});

describe("name and type", () => {
  test.each([["testnet"], ["k8s-pod-network"], ["net_1.a"], ["0"]])("name %p accepted", (name) => {
    expect(parse({ ...BASE, name }).name).toBe(name);
  });
  test.each([[undefined], [""], [42], ["../etc"], ["a/b"], ["-net"], [".hidden"], ["a b"], ["a:b"]])("name %p is code 7 naming the field", (name) => {
    const e = errorOf({ ...BASE, name });
    expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(e.message).toContain("name");
  });
  test.each([[undefined], [""], [7]])("type %p is code 7", (type) => {
    const e = errorOf({ ...BASE, type });
    expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(e.message).toContain("type");
  });
});

describe("sections", () => {
  test.each(["runtimeConfig", "args", "capabilities", "ipam", "dns"])("%s must be an object (code 7 naming it)", (key) => {
    for (const bad of [[], "x", 1, null]) {
      const e = errorOf({ ...BASE, [key]: bad });
      expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
      expect(e.message).toContain(key);
    }
  });
  test("DEL and GC drop a runtimeConfig that is not an object instead of refusing (cleanup needs none); ADD and CHECK refuse it", () => {
    for (const bad of [[], "x", 1, null]) {
      for (const cmd of ["DEL", "GC"] as CniCommand[]) expect(parse({ ...BASE, runtimeConfig: bad }, cmd).runtimeConfig).toBeUndefined();
      for (const cmd of ["ADD", "CHECK"] as CniCommand[]) expect(errorOf({ ...BASE, runtimeConfig: bad }, cmd).message).toContain("runtimeConfig");
    }
  });
  test("ipam needs a type", () => {
    const e = errorOf({ ...BASE, ipam: { subnet: "10.0.0.0/24" } });
    expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(e.message).toContain("ipam.type");
  });
  test("runtimeConfig, args and unknown fields pass through untouched; the result is frozen", () => {
    const conf = parse({
      ...BASE,
      runtimeConfig: { mac: "02:00:00:00:00:01", portMappings: [{ hostPort: 80, containerPort: 8080, protocol: "tcp" }] },
      args: { cni: { ips: ["10.1.1.5"] } },
      capabilities: { mac: true },
      ipam: { type: "mncni-ipam", ranges: [[{ subnet: "10.1.1.0/24" }]] },
      somethingElse: { nested: [1, 2] },
    });
    expect(conf.runtimeConfig).toEqual({ mac: "02:00:00:00:00:01", portMappings: [{ hostPort: 80, containerPort: 8080, protocol: "tcp" }] });
    expect(conf.args).toEqual({ cni: { ips: ["10.1.1.5"] } });
    expect(conf.ipam).toEqual({ type: "mncni-ipam", ranges: [[{ subnet: "10.1.1.0/24" }]] });
    expect(conf.somethingElse).toEqual({ nested: [1, 2] });
    expect(Object.isFrozen(conf)).toBe(true);
  });
});

describe("prevResult", () => {
  // The same attachment as each version writes it on the wire, and the 1.x shape it must become.
  const v4 = { address: "10.1.0.5/24", gateway: "10.1.0.1" };
  const v6 = { address: "fd00:1::5/64", gateway: "fd00:1::1" };
  const dns = { nameservers: ["10.96.0.10"], search: ["svc.cluster.local"] };
  const legacy = {
    ip4: { ip: v4.address, gateway: v4.gateway, routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }] },
    ip6: { ip: v6.address, gateway: v6.gateway, routes: [{ dst: "::/0" }] },
    dns,
  };
  const v03 = {
    interfaces: [{ name: "cbr0", mac: "02:00:00:00:00:01" }, { name: "eth0", mac: "02:00:00:00:00:02", sandbox: "/run/netns/p" }],
    ips: [
      { version: "4", ...v4, interface: 1 },
      { version: "6", ...v6, interface: 1 },
    ],
    routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }, { dst: "::/0" }],
    dns,
  };
  const v1 = {
    interfaces: [{ name: "cbr0", mac: "02:00:00:00:00:01", mtu: 1500 }, { name: "eth0", mac: "02:00:00:00:00:02", mtu: 1500, sandbox: "/run/netns/p" }],
    ips: [
      { ...v4, interface: 1 },
      { ...v6, interface: 1 },
    ],
    routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1", priority: 100 }, { dst: "::/0" }],
    dns,
  };
  const expected: Record<string, Omit<Result, "cniVersion">> = {
    legacy: { ips: [v4, v6], routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }, { dst: "::/0" }], dns },
    v03: {
      interfaces: v03.interfaces,
      ips: [
        { ...v4, interface: 1 },
        { ...v6, interface: 1 },
      ],
      routes: v03.routes,
      dns,
    },
    v1,
  };
  const wire: Record<string, [object, string]> = {
    "0.1.0": [legacy, "legacy"],
    "0.2.0": [legacy, "legacy"],
    "0.3.0": [v03, "v03"],
    "0.3.1": [v03, "v03"],
    "0.4.0": [v03, "v03"],
    "1.0.0": [v1, "v1"],
    "1.1.0": [v1, "v1"],
  };

  test.each(Object.keys(wire))("a %s prevResult is parsed into the 1.x shape", (v) => {
    const [prev, shape] = wire[v]!;
    const conf = parse({ ...BASE, cniVersion: v, prevResult: { cniVersion: v, ...prev } }, "DEL");
    expect(conf.prevResult).toEqual({ cniVersion: v, ...expected[shape]! });
  });

  test("a prevResult without cniVersion takes the config's version (as libcni does)", () => {
    expect(parse({ ...BASE, cniVersion: "0.2.0", prevResult: legacy }, "DEL").prevResult).toEqual({ cniVersion: "0.2.0", ...expected.legacy! });
    expect(parse({ ...BASE, cniVersion: "0.4.0", prevResult: v03 }, "CHECK").prevResult).toEqual({ cniVersion: "0.4.0", ...expected.v03! });
  });

  test("null prevResult is the same as none", () => {
    expect(parse({ ...BASE, prevResult: null }).prevResult).toBeUndefined();
    expect("prevResult" in parse({ ...BASE, prevResult: null })).toBe(false);
  });

  test("a prevResult of an unsupported version is code 1", () => {
    expect(errorOf({ ...BASE, prevResult: { cniVersion: "9.0.0", ips: [] } }).code).toBe(ErrorCode.IncompatibleVersion);
  });

  test.each([
    ["not an object", [1]],
    ["ips not an array", { cniVersion: "1.1.0", ips: {} }],
    ["ip without address", { cniVersion: "1.1.0", ips: [{ gateway: "10.0.0.1" }] }],
    ["interface index out of range", { cniVersion: "1.1.0", interfaces: [{ name: "eth0" }], ips: [{ address: "10.0.0.2/24", interface: 1 }] }],
    ["route without dst", { cniVersion: "1.1.0", routes: [{ gw: "10.0.0.1" }] }],
    ["mtu not an integer", { cniVersion: "1.1.0", routes: [{ dst: "0.0.0.0/0", mtu: "1500" }] }],
    ["dns.nameservers not strings", { cniVersion: "1.1.0", dns: { nameservers: [1] } }],
    ["legacy ip4 without ip", { cniVersion: "0.2.0", ip4: { gateway: "10.0.0.1" } }],
  ])("malformed (%s) is code 6 naming the field", (_, prev) => {
    const e = errorOf({ ...BASE, prevResult: prev });
    expect(e.code).toBe(ErrorCode.DecodingFailure);
    expect(e.message).toContain("prevResult");
  });
});

describe("cni.dev/valid-attachments", () => {
  const KEY = "cni.dev/valid-attachments";
  test("parsed for GC", () => {
    const list = [
      { containerID: "ctr1", ifname: "eth0" },
      { containerID: "ctr2", ifname: "net1" },
    ];
    expect(parse({ ...BASE, [KEY]: list }, "GC")[KEY]).toEqual(list);
    expect(parse({ ...BASE, [KEY]: [] }, "GC")[KEY]).toEqual([]);
  });
  test.each([
    ["not an array", { containerID: "c", ifname: "eth0" }, KEY],
    ["entry not an object", ["c/eth0"], `${KEY}[0]`],
    ["containerID missing", [{ ifname: "eth0" }], `${KEY}[0].containerID`],
    ["containerID escaping", [{ containerID: "c", ifname: "eth0" }, { containerID: "../x", ifname: "eth0" }], `${KEY}[1].containerID`],
    ["ifname missing", [{ containerID: "c" }], `${KEY}[0].ifname`],
    ["ifname with '/'", [{ containerID: "c", ifname: "a/b" }], `${KEY}[0].ifname`],
    ["ifname too long", [{ containerID: "c", ifname: "x".repeat(16) }], `${KEY}[0].ifname`],
  ])("%s is code 7 naming the field", (_, v, field) => {
    const e = errorOf({ ...BASE, [KEY]: v }, "GC");
    expect(e.code).toBe(ErrorCode.InvalidNetworkConfig);
    expect(e.message).toContain(`${field}:`);
  });
});
