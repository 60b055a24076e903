// runPlugin, the dispatcher, without a process: fake handlers and in-memory streams. VERSION,
// dispatch of each verb, results in the requested version, errors as the CNI error JSON.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { CniError, ErrorCode } from "../../src/cni/errors.ts";
import { runPlugin } from "../../src/cni/run.ts";
import type { CallContext, Handlers } from "../../src/cni/plugin-spec.ts";
import { SUPPORTED_VERSIONS, type CniCommand, type Result } from "../../src/cni/types.ts";
import { toWire } from "../../src/cni/version.ts";
import { bytes, cleanupTempDirs, tempDir } from "./helpers.ts";

afterAll(cleanupTempDirs);

const RESULT: Result = {
  cniVersion: "1.1.0",
  interfaces: [{ name: "eth0", mac: "02:00:00:00:00:05", mtu: 1500, sandbox: "/run/netns/p" }],
  ips: [
    { address: "10.9.0.5/24", gateway: "10.9.0.1", interface: 0 },
    { address: "fd00:9::5/64", gateway: "fd00:9::1", interface: 0 },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "10.9.0.1", mtu: 1400 }],
};

const logDir = tempDir("run");
// Calls whose config is unreadable log to $MNCNI_LOG_FILE: keep them out of /var/log.
const ENV = { CNI_CONTAINERID: "ctr1", CNI_NETNS: "/run/netns/p", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", MNCNI_LOG_FILE: `${logDir}/fallback.log` };

interface Call {
  command: CniCommand;
  conf?: object | string;
  env?: Record<string, string | undefined>;
  handlers?: Partial<Handlers>;
}

/** Runs one call; every handler records the context it got and returns RESULT (ADD) or nothing. */
async function call(c: Call) {
  const seen: { verb: string; ctx: CallContext }[] = [];
  const record = (verb: string) => (ctx: CallContext) => void seen.push({ verb, ctx });
  const handlers: Handlers = {
    add: (ctx) => (record("add")(ctx), { ...RESULT, cniVersion: ctx.conf.cniVersion }),
    del: record("del"),
    check: record("check"),
    status: record("status"),
    gc: record("gc"),
    ...c.handlers,
  };
  let stdout = "";
  let stderr = "";
  const stdin = c.conf === undefined ? new Uint8Array() : bytes(c.conf);
  const code = await runPlugin(
    { name: "test-plugin", handlers },
    { env: { ...ENV, CNI_COMMAND: c.command, ...c.env }, stdin, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) },
  );
  return { code, stdout, stderr, json: stdout ? JSON.parse(stdout) : undefined, seen, stdin };
}

const conf = (extra: object = {}) => ({ cniVersion: "1.1.0", name: "testnet", type: "fake", logFile: `${logDir}/cni.log`, ...extra });

describe("VERSION", () => {
  test("lists all 7 versions, calls no handler, needs no config", async () => {
    const r = await call({ command: "VERSION" });
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith("\n")).toBe(true);
    expect(r.json).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] });
    expect(r.seen).toEqual([]);
  });
  test("ignores a config on stdin, even an invalid one", async () => {
    expect((await call({ command: "VERSION", conf: "{not json" })).code).toBe(0);
  });
});

describe("dispatch", () => {
  const verbs: [CniCommand, string][] = [["ADD", "add"], ["DEL", "del"], ["CHECK", "check"], ["STATUS", "status"], ["GC", "gc"]];
  test.each(verbs)("%s calls %s with the parsed env, config and exact stdin", async (command, verb) => {
    const c = conf({ "cni.dev/valid-attachments": [{ containerID: "ctr1", ifname: "eth0" }], extra: "kept" });
    const r = await call({ command, conf: c, env: { CNI_ARGS: "K8S_POD_NAME=web-0" } });
    expect(r.code).toBe(0);
    expect(r.seen.map((s) => s.verb)).toEqual([verb]);
    const ctx = r.seen[0]!.ctx;
    expect(ctx.env).toEqual({ command, containerId: "ctr1", netns: "/run/netns/p", ifname: "eth0", args: { K8S_POD_NAME: "web-0" }, rawArgs: "K8S_POD_NAME=web-0", path: ["/opt/cni/bin"] });
    expect(ctx.conf.extra).toBe("kept");
    expect(ctx.stdin).toBe(r.stdin);
    // Only ADD prints a result; the other verbs answer with the exit code alone.
    if (command === "ADD") expect(r.json.ips).toHaveLength(2);
    else expect(r.stdout).toBe("");
  });
});

describe("ADD result", () => {
  test.each([...SUPPORTED_VERSIONS])("printed in the requested version %s", async (v) => {
    const r = await call({ command: "ADD", conf: conf({ cniVersion: v }) });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toHaveLength(2); // one JSON document, one newline
    expect(r.json.cniVersion).toBe(v);
    expect(r.json).toEqual(JSON.parse(JSON.stringify(toWire(RESULT, v))));
    if (v < "0.3.0") expect(r.json.ip4.ip).toBe("10.9.0.5/24");
    else expect(r.json.ips[0].address).toBe("10.9.0.5/24");
  });
  test("an async handler is awaited", async () => {
    const r = await call({ command: "ADD", conf: conf(), handlers: { add: async () => (await Bun.sleep(1), RESULT) } });
    expect(r.json.ips).toHaveLength(2);
  });
});

describe("errors", () => {
  test("a CniError from a handler: its code, msg and details, in the config's version; exit 1", async () => {
    const r = await call({
      command: "ADD",
      conf: conf({ cniVersion: "0.4.0" }),
      handlers: {
        add: () => {
          throw new CniError(ErrorCode.TryAgainLater, "cannot lock pool: busy", "held by pid 42");
        },
      },
    });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "0.4.0", code: 11, msg: "cannot lock pool: busy", details: "held by pid 42" });
    expect(r.stderr).toBe("");
  });
  test("a plain Error becomes code 999 with its message; the stack goes to stderr", async () => {
    const r = await call({
      command: "DEL",
      conf: conf(),
      handlers: {
        del: () => {
          throw new TypeError("x is undefined");
        },
      },
    });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.1.0", code: 999, msg: "x is undefined" });
    expect(r.stderr).toContain("test-plugin: TypeError: x is undefined");
    expect(r.stderr).toContain("run.test.ts");
  });
  test("a thrown non-Error value becomes code 999", async () => {
    const r = await call({ command: "STATUS", conf: conf(), handlers: { status: () => Promise.reject("nope") } });
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ cniVersion: "1.1.0", code: 999, msg: "nope" });
  });
  test("STATUS codes 50/51 pass through", async () => {
    for (const code of [ErrorCode.PluginNotAvailable, ErrorCode.PluginNotAvailableLimitedConnectivity]) {
      const r = await call({ command: "STATUS", conf: conf(), handlers: { status: () => Promise.reject(new CniError(code, "pool exhausted")) } });
      expect(r.json.code).toBe(code);
    }
  });
  test("an env error is code 4, answered in the version the config asks for; no handler runs", async () => {
    const r = await call({ command: "ADD", conf: conf({ cniVersion: "0.3.1" }), env: { CNI_IFNAME: undefined, CNI_CONTAINERID: "../x" } });
    expect(r.code).toBe(1);
    expect(r.json.cniVersion).toBe("0.3.1");
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toContain("CNI_IFNAME");
    expect(r.json.msg).toContain("CNI_CONTAINERID");
    expect(r.seen).toEqual([]);
  });
  test("an invalid command is code 4", async () => {
    const r = await call({ command: "BOGUS" as CniCommand, conf: conf() });
    expect(r.json.code).toBe(4);
  });
  test.each([
    ["bad JSON", "{", 6],
    ["not an object", "[1]", 6],
    ["empty stdin", "", 6],
    ["missing cniVersion", { name: "n", type: "t" }, 7],
    ["unsupported version", { cniVersion: "3.0.0", name: "n", type: "t" }, 1],
  ])("%s: code %d, answered in 1.1.0", async (_, c, code) => {
    const r = await call({ command: "ADD", conf: c });
    expect(r.code).toBe(1);
    expect(r.json.code).toBe(code);
    expect(r.json.cniVersion).toBe("1.1.0");
    expect(r.seen).toEqual([]);
  });
  test("code 1 details list the supported versions", async () => {
    const r = await call({ command: "CHECK", conf: conf({ cniVersion: "0.3.0" }) });
    expect(r.json.code).toBe(1);
    expect(r.json.cniVersion).toBe("0.3.0");
    const bad = await call({ command: "ADD", conf: conf({ cniVersion: "0.9.9" }) });
    expect(bad.json.details).toBe("supported versions: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
  });
  test("calls that fail before the config is readable log to $MNCNI_LOG_FILE", async () => {
    // Its own log file and its own calls: the test does not depend on the ones above.
    const log = `${tempDir("fallback")}/fallback.log`;
    for (const c of ["{", "[1]", "", { name: "n", type: "t" }, { cniVersion: "3.0.0", name: "n", type: "t" }]) {
      await call({ command: "ADD", conf: c, env: { MNCNI_LOG_FILE: log } });
    }
    const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.code)).toEqual([6, 6, 6, 7, 1]);
  });
});

describe("handlers given as a loader", () => {
  const handlers: Handlers = { add: () => RESULT, del() {}, check() {}, status() {}, gc() {} };
  async function callWithLoader(command: CniCommand, c: object | string) {
    let loads = 0;
    let stdout = "";
    const loader = async () => (loads++, handlers);
    const code = await runPlugin({ name: "lazy", handlers: loader }, { env: { ...ENV, CNI_COMMAND: command }, stdin: bytes(c), stdout: (t) => void (stdout += t) });
    return { code, loads, json: JSON.parse(stdout || "null") };
  }
  test("VERSION and calls with bad input never load the handlers", async () => {
    expect(await callWithLoader("VERSION", "")).toMatchObject({ code: 0, loads: 0 });
    expect(await callWithLoader("ADD", "{")).toMatchObject({ code: 1, loads: 0, json: { code: 6 } });
  });
  test("a valid call loads them once and runs them", async () => {
    const r = await callWithLoader("ADD", conf());
    expect([r.code, r.loads, r.json.ips[0].address]).toEqual([0, 1, "10.9.0.5/24"]);
  });
});
