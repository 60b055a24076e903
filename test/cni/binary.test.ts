// The compiled executable as a runtime sees it: exit codes and the error JSON on stdout for
// every error path, the three roles (plugin, mncni-ipam via a symlink, CLI), the invocation
// log of a bad call, and a delegated IPAM error passing through the whole plugin.
// Calls run in the root namespace only when they fail before any kernel call (or, for
// mncni-ipam, touch only files); the delegation test runs in throwaway namespaces.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { SUPPORTED_VERSIONS } from "../../src/cni/types.ts";
import { VERSION } from "../../src/base/version.ts";
import { requireBinary } from "../helpers/binary.ts";
import { cni, type CniCall, type CniReply } from "../helpers/cni.ts";
import { cleanupNetns, createNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";
import { cleanupTempDirs, tempDir } from "./helpers.ts";

const bin = resolve(requireBinary());
const dir = tempDir("bin");
const ipamBin = `${dir}/mncni-ipam`;
symlinkSync(bin, ipamBin);
const LOG = `${dir}/cni.log`;
const FALLBACK_LOG = `${dir}/fallback.log`;

afterAll(() => {
  cleanupNetns();
  cleanupTempDirs();
});

const CONF = { cniVersion: "1.1.0", name: "testnet", type: "mncni", ipam: { type: "mncni-ipam", ranges: [[{ subnet: "10.244.9.0/24" }]], dataDir: `${dir}/ipam` }, logFile: LOG };
const ENV = { containerId: "ctr1", netns: "/run/netns/does-not-matter", ifname: "eth0", path: "/usr/lib/cni" };

/** A call in the root namespace; MNCNI_LOG_FILE keeps unreadable-config calls out of /var/log. */
const call = (c: Omit<CniCall, "env"> & { env?: Record<string, string> }): CniReply => cni({ ...c, env: { MNCNI_LOG_FILE: FALLBACK_LOG, ...c.env } });

function expectError(r: CniReply, code: number, cniVersion = "1.1.0"): void {
  expect(r.code).toBe(1);
  expect(r.stdout.endsWith("\n")).toBe(true);
  expect(r.stdout.trim().split("\n")).toHaveLength(1);
  expect(r.json).toBeDefined();
  expect(Object.keys(r.json).sort()).toEqual(r.json.details === undefined ? ["cniVersion", "code", "msg"] : ["cniVersion", "code", "details", "msg"]);
  expect(r.json.cniVersion).toBe(cniVersion);
  expect(r.json.code).toBe(code);
  expect(typeof r.json.msg).toBe("string");
  expect(r.json.msg.length).toBeGreaterThan(0);
  expect(r.stderr).toBe("");
}

describe("VERSION", () => {
  const expected = { cniVersion: "1.1.0", supportedVersions: [...SUPPORTED_VERSIONS] };
  test("as mncni", () => {
    const r = call({ command: "VERSION" });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toBe(JSON.stringify(expected) + "\n");
  });
  test("as mncni-ipam (a symlink to the same executable)", () => {
    const r = call({ command: "VERSION", bin: ipamBin });
    expect([r.code, r.stderr, r.json]).toEqual([0, "", expected]);
  });
  test("with a config and odd variables on stdin/env it still answers", () => {
    expect(call({ command: "VERSION", conf: "{junk", ifname: "a/b" }).json).toEqual(expected);
  });
  test("is not logged (while a bad call with the same log file is)", () => {
    const log = `${tempDir("versionlog")}/cni.log`;
    call({ command: "VERSION", env: { MNCNI_LOG_FILE: log } });
    call({ command: "VERSION", conf: { ...CONF, logFile: log } });
    expect(existsSync(log)).toBe(false);
    // Control: a call that is logged lands in that file, so the check above could fail.
    call({ command: "FOO" as CniCall["command"], conf: "{", ...ENV, env: { MNCNI_LOG_FILE: log } });
    const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.command)).toEqual(["FOO"]);
  });
});

describe("error paths (fail before any kernel call)", () => {
  const cases: [string, number, CniCall, string][] = [
    ["unknown CNI_COMMAND", 4, { command: "FOO" as CniCall["command"], conf: CONF, ...ENV }, "CNI_COMMAND"],
    ["ADD without CNI_NETNS and CNI_IFNAME", 4, { command: "ADD", conf: CONF, containerId: "c" }, "CNI_NETNS is missing; required env variable CNI_IFNAME is missing"],
    ["ADD with an escaping container ID", 4, { command: "ADD", conf: CONF, ...ENV, containerId: "../etc" }, 'CNI_CONTAINERID "../etc"'],
    ["DEL with a 16-byte ifname", 4, { command: "DEL", conf: CONF, ...ENV, ifname: "x".repeat(16) }, "CNI_IFNAME"],
    ["GC without CNI_PATH", 4, { command: "GC", conf: CONF }, "CNI_PATH"],
    ["bad CNI_ARGS", 4, { command: "ADD", conf: CONF, ...ENV, args: "K8S_POD_NAME" }, "CNI_ARGS"],
    ["undecodable JSON", 6, { command: "ADD", conf: '{"cniVersion":', ...ENV }, "cannot decode network config"],
    ["empty stdin", 6, { command: "ADD", conf: "", ...ENV }, "empty input"],
    ["JSON that is not an object", 6, { command: "ADD", conf: "[]", ...ENV }, "not a JSON object"],
    ["missing cniVersion", 7, { command: "ADD", conf: { ...CONF, cniVersion: undefined }, ...ENV }, "cniVersion"],
    ["missing name", 7, { command: "ADD", conf: { ...CONF, name: undefined }, ...ENV }, "name"],
    ["escaping network name", 7, { command: "DEL", conf: { ...CONF, name: "../../etc" }, ...ENV }, "name"],
    ["ipam without type", 7, { command: "ADD", conf: { ...CONF, ipam: {} }, ...ENV }, "ipam.type"],
    ["bad valid-attachments", 7, { command: "GC", conf: { ...CONF, "cni.dev/valid-attachments": [{ containerID: "c" }] }, path: "/usr/lib/cni" }, "cni.dev/valid-attachments[0].ifname"],
    ["malformed prevResult", 6, { command: "DEL", conf: { ...CONF, prevResult: { cniVersion: "1.1.0", ips: [{}] } }, ...ENV }, "prevResult.ips[0].address"],
    ["unsupported plugin field", 2, { command: "ADD", conf: { ...CONF, bogus: true }, ...ENV }, '"bogus"'],
  ];
  test.each(cases)("%s: code %i", (_, code, c, inMsg) => {
    const r = call(c);
    expectError(r, code);
    expect(r.json.msg).toContain(inMsg);
  });

  test.each(["0.9.0", "1.2.0", "v1.0.0"])("unsupported cniVersion %p: code 1, details list the supported versions", (v) => {
    const r = call({ command: "ADD", conf: { ...CONF, cniVersion: v }, ...ENV });
    expectError(r, 1);
    expect(r.json.details).toBe(`supported versions: ${SUPPORTED_VERSIONS.join(", ")}`);
  });

  test.each([
    ["CHECK", "0.3.1"],
    ["STATUS", "1.0.0"],
    ["GC", "0.4.0"],
  ] as const)("%s with cniVersion %s: code 1, answered in that version", (command, v) => {
    const r = call({ command, conf: { ...CONF, cniVersion: v }, ...ENV });
    expectError(r, 1, v);
  });

  test("errors are answered in the config's version", () => {
    expectError(call({ command: "ADD", conf: { ...CONF, cniVersion: "0.4.0" }, containerId: "c" }), 4, "0.4.0");
  });

  test("mncni-ipam reports the same way", () => {
    expectError(call({ command: "ADD", conf: CONF, bin: ipamBin }), 4);
    expectError(call({ command: "ADD", conf: "nope", bin: ipamBin, ...ENV }), 6);
  });
});

describe("invocation log", () => {
  test("a bad-input call is logged to the config's logFile", () => {
    call({ command: "DEL", conf: CONF, ...ENV, ifname: "bad/if", args: "K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=api-0" });
    const rec = JSON.parse(readFileSync(LOG, "utf8").trim().split("\n").at(-1)!);
    expect(rec).toMatchObject({ plugin: "mncni", command: "DEL", containerId: "ctr1", ifname: "bad/if", podNamespace: "team-a", podName: "api-0", outcome: "error", code: 4 });
    expect(rec.msg).toContain("CNI_IFNAME");
    expect(typeof rec.durationMs).toBe("number");
  });
  test("a call whose config cannot be read is logged to $MNCNI_LOG_FILE", () => {
    call({ command: "ADD", conf: "{{", ...ENV, containerId: "ctr-unreadable" });
    const rec = JSON.parse(readFileSync(FALLBACK_LOG, "utf8").trim().split("\n").at(-1)!);
    expect(rec).toMatchObject({ command: "ADD", containerId: "ctr-unreadable", outcome: "error", code: 6 });
  });
});

describe("mncni-ipam role", () => {
  test("ADD returns addresses and no interfaces, DEL releases them (files only, no network state)", () => {
    const conf = { ...CONF, cniVersion: "1.0.0", name: "ipamnet" };
    const add = call({ command: "ADD", conf, ...ENV, containerId: "ipam-ctr", bin: ipamBin });
    expect([add.code, add.stderr]).toEqual([0, ""]);
    expect(add.json).toEqual({ cniVersion: "1.0.0", ips: [{ address: "10.244.9.2/24", gateway: "10.244.9.1" }] });
    expect(readdirSync(`${dir}/ipam/ipamnet`)).toContain("10.244.9.2");
    const del = call({ command: "DEL", conf, ...ENV, containerId: "ipam-ctr", bin: ipamBin });
    expect([del.code, del.stdout, del.stderr]).toEqual([0, "", ""]);
    expect(readdirSync(`${dir}/ipam/ipamnet`)).not.toContain("10.244.9.2");
    const log = readFileSync(LOG, "utf8");
    expect(log).toContain('"plugin":"mncni-ipam","command":"ADD","containerId":"ipam-ctr"');
  });
  test("answers in legacy versions too", () => {
    const conf = { ...CONF, cniVersion: "0.2.0", name: "ipamnet2" };
    const add = call({ command: "ADD", conf, ...ENV, bin: ipamBin });
    expect(add.json).toEqual({ cniVersion: "0.2.0", ip4: { ip: "10.244.9.2/24", gateway: "10.244.9.1" } });
  });
});

describe("CLI role (no CNI_COMMAND)", () => {
  const cli = (...args: string[]) => run([bin, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, allowFail: true });
  test("mncni --help", () => {
    const r = cli("--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: mncni <command>");
    for (const c of ["agent", "lab", "version"]) expect(r.stdout).toContain(`  ${c}`);
  });
  test("mncni version", () => {
    const r = cli("version");
    expect([r.code, r.stdout]).toEqual([0, `mncni ${VERSION}\n`]);
  });
  test("an unknown command exits 2 with usage on stderr", () => {
    const r = cli("frobnicate");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});

describe("a delegated IPAM through the whole plugin (in throwaway namespaces)", () => {
  let node = "";
  let pod = "";
  const pluginDir = `${dir}/cni-bin`;
  beforeAll(() => {
    node = createNetns("mnproto-node");
    pod = createNetns("mnproto-pod");
    run(["mkdir", "-p", pluginDir]);
    writeFileSync(
      `${pluginDir}/fake-ipam`,
      `#!/bin/sh\ncat > "${pluginDir}/stdin.$CNI_COMMAND"\necho "fake-ipam: pool locked" >&2\necho '{"cniVersion":"1.1.0","code":11,"msg":"cannot allocate: pool locked","details":"retry later"}'\nexit 1\n`,
    );
    chmodSync(`${pluginDir}/fake-ipam`, 0o755);
  });

  test("its error code 11 and stderr reach the runtime; nothing is left behind", () => {
    const conf = { ...CONF, ipam: { type: "fake-ipam" } };
    const r = cni({ command: "ADD", conf, containerId: "deleg1", netns: netnsPath(pod), ifname: "eth0", path: `/nonexistent:${pluginDir}`, nodeNs: node, env: { MNCNI_LOG_FILE: FALLBACK_LOG } });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.1.0", code: 11, msg: "cannot allocate: pool locked", details: "retry later" });
    expect(r.stderr).toContain("fake-ipam: pool locked");
    // The IPAM plugin got the exact config the runtime sent.
    expect(JSON.parse(readFileSync(`${pluginDir}/stdin.ADD`, "utf8"))).toEqual(conf);
    for (const ns of [node, pod]) expect(ipJson<{ ifname: string }[]>(ns, ["link", "show"]).map((l) => l.ifname)).toEqual(["lo"]);
  });

  test("a missing IPAM plugin is reported with its name and CNI_PATH", () => {
    const conf = { ...CONF, ipam: { type: "no-such-ipam" } };
    const r = cni({ command: "ADD", conf, containerId: "deleg2", netns: netnsPath(pod), ifname: "eth0", path: pluginDir, nodeNs: node, env: { MNCNI_LOG_FILE: FALLBACK_LOG } });
    expect(r.code).toBe(1);
    expect(r.json.msg).toBe(`cannot find plugin "no-such-ipam" in CNI_PATH "${pluginDir}"`);
  });
});
