// The invocation log: one JSON line per call with the pod identity from CNI_ARGS, rotation at
// the size cap into exactly one .1 file, and a log that cannot be written never failing a call.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { CniError } from "../../src/cni/errors.ts";
import { runPlugin } from "../../src/cni/run.ts";
import type { Handlers } from "../../src/cni/plugin-spec.ts";
import { appendInvocation, type InvocationRecord } from "../../src/cni/invocation-log.ts";
import { bytes, cleanupTempDirs, tempDir } from "./helpers.ts";

afterAll(cleanupTempDirs);

const handlers: Handlers = {
  add: (ctx) => ({ cniVersion: ctx.conf.cniVersion, ips: [{ address: "10.7.0.9/24" }] }),
  del: () => {},
  check: () => {
    throw new CniError(3, 'cannot find container "ctr9"');
  },
  status: () => {},
  gc: () => {},
};

async function call(env: Record<string, string | undefined>, conf: object | string) {
  let stdout = "";
  const code = await runPlugin({ name: "mncni", handlers }, { env, stdin: bytes(conf), stdout: (t) => void (stdout += t), stderr: () => {} });
  return { code, stdout };
}

const readLines = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as InvocationRecord);

describe("the log line", () => {
  const dir = tempDir("obs");
  const logFile = `${dir}/nested/dir/cni.log`; // created on first use
  const conf = { cniVersion: "1.0.0", name: "podnet", type: "mncni", logFile };
  const env = {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "ctr9",
    CNI_NETNS: "/run/netns/pod9",
    CNI_IFNAME: "eth0",
    CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-abcde;K8S_POD_INFRA_CONTAINER_ID=ctr9",
    CNI_PATH: "/opt/cni/bin",
  };

  test("a successful ADD", async () => {
    const before = Date.now();
    expect((await call(env, conf)).code).toBe(0);
    const [rec, ...rest] = readLines(logFile);
    expect(rest).toEqual([]);
    expect(Object.keys(rec!).sort()).toEqual(
      ["time", "plugin", "command", "containerId", "netns", "ifname", "network", "podNamespace", "podName", "durationMs", "outcome", "ips", "phases"].sort(),
    );
    // Where the time went, phase by phase, in call order.
    expect(Object.keys(rec!.phases!)).toEqual(["protocol", "config", "load", "result"]);
    for (const ms of Object.values(rec!.phases!)) expect(ms).toBeGreaterThanOrEqual(0);
    expect(rec).toMatchObject({
      plugin: "mncni",
      command: "ADD",
      containerId: "ctr9",
      netns: "/run/netns/pod9",
      ifname: "eth0",
      network: "podnet",
      podNamespace: "kube-system",
      podName: "coredns-5d78c9869d-abcde",
      outcome: "ok",
      ips: ["10.7.0.9/24"],
    });
    expect(Date.parse(rec!.time)).toBeGreaterThanOrEqual(before - 1000);
    expect(rec!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Its shape only: how long a call takes belongs in bench/, not in a test.
    expect(typeof rec!.durationMs).toBe("number");
    expect(rec!.durationMs).toBeGreaterThanOrEqual(0);
  });

  test("a failed CHECK records the code and message", async () => {
    expect((await call({ ...env, CNI_COMMAND: "CHECK", CNI_ARGS: "" }, conf)).code).toBe(1);
    const rec = readLines(logFile).at(-1)!;
    expect(rec).toMatchObject({ command: "CHECK", outcome: "error", code: 3, msg: 'cannot find container "ctr9"' });
    expect(rec.podNamespace).toBeUndefined();
    expect(rec.podName).toBeUndefined();
  });

  test("a call with bad input (invalid env) is logged to the config's logFile", async () => {
    const { stdout } = await call({ ...env, CNI_COMMAND: "DEL", CNI_IFNAME: "bad/name" }, conf);
    expect(JSON.parse(stdout).code).toBe(4);
    const rec = readLines(logFile).at(-1)!;
    expect(rec).toMatchObject({ command: "DEL", outcome: "error", code: 4, ifname: "bad/name", containerId: "ctr9", podName: "coredns-5d78c9869d-abcde" });
    expect(rec.msg).toContain("CNI_IFNAME");
  });

  test("a call with an invalid config is logged too, with the invalid field", async () => {
    await call(env, { ...conf, name: "../escape" });
    expect(readLines(logFile).at(-1)).toMatchObject({ command: "ADD", outcome: "error", code: 7 });
  });

  test("VERSION is not logged (it has no config and runtimes call it often)", async () => {
    const n = readLines(logFile).length;
    await call({ CNI_COMMAND: "VERSION" }, conf);
    expect(readLines(logFile)).toHaveLength(n);
  });
});

describe("rotation", () => {
  const rec = (seq: number): InvocationRecord => ({ time: new Date(0).toISOString(), plugin: "mncni", command: "ADD", containerId: `c${seq}`, durationMs: 1, outcome: "ok" });

  test("at the size cap the file moves to .1 (one rotated file, overwritten); no line is split", () => {
    const dir = tempDir("obs");
    const file = `${dir}/cni.log`;
    const lineBytes = JSON.stringify(rec(100)).length + 1;
    const cap = lineBytes * 10; // ten lines of c100..c999 fit exactly
    for (let seq = 100; seq < 135; seq++) appendInvocation(file, rec(seq), cap);
    expect(readdirSync(dir).sort()).toEqual(["cni.log", "cni.log.1"]);
    const current = readLines(file).map((r) => r.containerId);
    const rotated = readLines(`${file}.1`).map((r) => r.containerId);
    // 35 lines with 10 per file: 100-129 went through three rotations, the last kept in .1.
    expect(rotated).toEqual(Array.from({ length: 10 }, (_, i) => `c${120 + i}`));
    expect(current).toEqual(Array.from({ length: 5 }, (_, i) => `c${130 + i}`));
    expect(statSync(file).size).toBeLessThanOrEqual(cap);
    expect(statSync(`${file}.1`).size).toBeLessThanOrEqual(cap);
  });

  test("the cap counts bytes, not characters", () => {
    const dir = tempDir("obs");
    const file = `${dir}/cni.log`;
    const wide = { ...rec(1), msg: "é".repeat(50) };
    const lineBytes = Buffer.byteLength(JSON.stringify(wide)) + 1;
    appendInvocation(file, wide, lineBytes * 2 - 10); // a second line would cross the cap in bytes only
    appendInvocation(file, wide, lineBytes * 2 - 10);
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(statSync(file).size).toBe(lineBytes);
  });
});

describe("a log that cannot be written", () => {
  test("under a regular file: the CNI call still succeeds, a note goes to stderr", async () => {
    const dir = tempDir("obs");
    writeFileSync(`${dir}/plainfile`, "x");
    const notes: string[] = [];
    const spy = spyOn(process.stderr, "write").mockImplementation(((t: string) => (notes.push(String(t)), true)) as typeof process.stderr.write);
    try {
      const conf = { cniVersion: "1.1.0", name: "n", type: "mncni", logFile: `${dir}/plainfile/cni.log` };
      const r = await call({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0" }, conf);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).ips).toEqual([{ address: "10.7.0.9/24" }]);
      // and an error call keeps its own code, not a logging error
      const bad = await call({ CNI_COMMAND: "ADD" }, conf);
      expect(JSON.parse(bad.stdout).code).toBe(4);
    } finally {
      spy.mockRestore();
    }
    expect(notes.join("")).toContain(`cannot write invocation log "${dir}/plainfile/cni.log"`);
  });

  test("a directory in the log's place does not throw either", () => {
    const dir = tempDir("obs");
    mkdirSync(`${dir}/cni.log`);
    const spy = spyOn(process.stderr, "write").mockImplementation((() => true) as typeof process.stderr.write);
    try {
      expect(() => appendInvocation(`${dir}/cni.log`, { time: "", plugin: "p", command: "DEL", durationMs: 0, outcome: "ok" })).not.toThrow();
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
