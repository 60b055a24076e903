// The runtime-side CNI executor, against the Go reference plugins (real kernel state checked
// with `ip -j`) and against a recording plugin (exact env and stdin of every call).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CniExecutor, CniPluginError, firstConfFile } from "../../src/lab/executor.ts";
import { cleanupNetns, createNetns, ipJson, run } from "../helpers/netns.ts";
import { REF_CNI_DIR } from "../helpers/binary.ts";

const dir = mkdtempSync(join(tmpdir(), "mnlx-"));
afterAll(() => {
  cleanupNetns();
  rmSync(dir, { recursive: true, force: true });
});

function conflist(confDir: string, name: string, body: object): void {
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, name), JSON.stringify(body));
}

describe("config loading", () => {
  test("the lexically first .conflist/.conf/.json wins; other files are ignored", () => {
    const d = join(dir, "load");
    conflist(d, "20-b.conflist", { cniVersion: "1.0.0", name: "b", plugins: [{ type: "x" }] });
    conflist(d, "10-a.conf", { cniVersion: "1.0.0", name: "a", type: "y" });
    writeFileSync(join(d, "00-readme.txt"), "not a config");
    expect(firstConfFile(d)).toBe(join(d, "10-a.conf"));
    const list = new CniExecutor({ confDir: d, binDirs: [], cacheDir: join(dir, "c") }).loadNetwork();
    expect(list.name).toBe("a");
    expect(list.plugins.map((p) => p.type)).toEqual(["y"]);
  });

  test("an empty directory is an error naming it", () => {
    const d = join(dir, "empty");
    mkdirSync(d);
    expect(() => new CniExecutor({ confDir: d, binDirs: [], cacheDir: d }).loadNetwork()).toThrow(/no config file/);
  });
});

describe("protocol, with a recording plugin", () => {
  const bin = join(dir, "rec-bin");
  const confDir = join(dir, "rec-conf");
  const cacheDir = join(dir, "rec-cache");
  const record = join(dir, "record.jsonl");
  const bun = process.execPath;
  const calls = () => readFileSync(record, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const att = { containerId: "c1", netns: "/run/netns/none", ifname: "eth0", args: { K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web" }, capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: "tcp" }], bandwidth: { ingressRate: 1 } } };

  beforeAll(() => {
    mkdirSync(bin, { recursive: true });
    for (const name of ["first", "second"]) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec ${bun} ${resolve(import.meta.dir, "recorder-plugin.ts")}\n`);
      chmodSync(join(bin, name), 0o755);
    }
    conflist(confDir, "10-rec.conflist", {
      cniVersion: "1.1.0",
      name: "recnet",
      plugins: [{ type: "first", capabilities: { portMappings: true }, runtimeConfig: { stale: true } }, { type: "second", extra: 42 }],
    });
  });

  const exec = () => new CniExecutor({ confDir, binDirs: ["/nonexistent", bin], cacheDir, env: { RECORD_FILE: record } });

  test("ADD runs the chain in order with prevResult, env, runtimeConfig; caches the result", async () => {
    rmSync(record, { force: true });
    const e = exec();
    const res = await e.add(att);
    expect(res.interfaces?.map((i) => i.name)).toEqual(["first", "second"]);
    const [c1, c2] = calls();
    expect(c1.plugin).toBe("first");
    expect(c1.env).toMatchObject({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/none", CNI_IFNAME: "eth0", CNI_PATH: `/nonexistent:${bin}` });
    expect(c1.env.CNI_ARGS.split(";").sort()).toEqual(["K8S_POD_NAME=web", "K8S_POD_NAMESPACE=default"]);
    expect(c1.conf).toMatchObject({ cniVersion: "1.1.0", name: "recnet", runtimeConfig: { portMappings: att.capabilityArgs.portMappings } });
    expect(c1.conf.runtimeConfig.stale).toBeUndefined();
    expect(c1.conf.prevResult).toBeUndefined();
    expect(c2.conf.runtimeConfig).toBeUndefined(); // declares no capability
    expect(c2.conf.extra).toBe(42);
    expect(c2.conf.prevResult.interfaces.map((i: { name: string }) => i.name)).toEqual(["first"]);
    expect(e.calls.map((c) => `${c.command}:${c.plugin}`)).toEqual(["ADD:first", "ADD:second"]);
    expect(e.calls.every((c) => c.ok && c.ms > 0)).toBe(true);
    expect(readdirSync(cacheDir)).toEqual(["recnet-c1-eth0"]);
  });

  test("CHECK passes the cached result to every plugin in order", async () => {
    rmSync(record, { force: true });
    await exec().check(att);
    expect(calls().map((c) => [c.plugin, c.env.CNI_COMMAND, c.conf.prevResult.interfaces.length])).toEqual([["first", "CHECK", 2], ["second", "CHECK", 2]]);
  });

  test("STATUS and GC reach every plugin; GC carries valid attachments and prunes the cache", async () => {
    rmSync(record, { force: true });
    const e = exec();
    await e.status();
    await e.gc([{ containerID: "other", ifname: "eth0" }]);
    const cs = calls();
    expect(cs.map((c) => `${c.env.CNI_COMMAND}:${c.plugin}`)).toEqual(["STATUS:first", "STATUS:second", "GC:first", "GC:second"]);
    expect(cs[0].env.CNI_CONTAINERID).toBeUndefined();
    expect(cs[2].conf["cni.dev/valid-attachments"]).toEqual([{ containerID: "other", ifname: "eth0" }]);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  test("DEL runs in reverse order with the cached result, then forgets it", async () => {
    const e = exec();
    await e.add(att);
    rmSync(record, { force: true });
    await e.del(att);
    const cs = calls();
    expect(cs.map((c) => `${c.env.CNI_COMMAND}:${c.plugin}`)).toEqual(["DEL:second", "DEL:first"]);
    expect(cs[0].conf.prevResult.interfaces.length).toBe(2);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  test("a CNI error result becomes a typed CniPluginError", async () => {
    const d = join(dir, "fail-conf");
    conflist(d, "10.conflist", { cniVersion: "1.0.0", name: "failnet", plugins: [{ type: "first" }, { type: "second", failWith: 7, failOn: "ADD" }] });
    const e = new CniExecutor({ confDir: d, binDirs: [bin], cacheDir: join(dir, "fail-cache"), env: { RECORD_FILE: record } });
    const err = await e.add({ ...att, containerId: "c2" }).catch((x) => x);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err).toMatchObject({ plugin: "second", command: "ADD", code: 7, msg: "recorder told to fail", details: "on purpose" });
    expect(existsSync(join(dir, "fail-cache", "failnet-c2-eth0"))).toBe(false);
  });

  test("a missing plugin binary is reported by name", async () => {
    const d = join(dir, "missing-conf");
    conflist(d, "10.conflist", { cniVersion: "1.0.0", name: "m", plugins: [{ type: "nosuchplugin" }] });
    const err = await new CniExecutor({ confDir: d, binDirs: [bin], cacheDir: dir }).add(att).catch((x) => x);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err.message).toContain('"nosuchplugin"');
  });
});

describe("with the Go reference plugins inside a node namespace", () => {
  test("bridge + host-local: ADD wires the pod, CHECK passes, DEL releases, CHECK then fails", async () => {
    const node = createNetns("mnlxn");
    const pod = createNetns("mnlxp");
    const d = join(dir, "ref");
    const binDir = join(d, "bin");
    mkdirSync(binDir, { recursive: true });
    for (const b of ["bridge", "host-local"]) symlinkSync(join(REF_CNI_DIR, b), join(binDir, b));
    conflist(join(d, "net.d"), "10.conflist", {
      cniVersion: "1.0.0",
      name: "refnet",
      plugins: [{ type: "bridge", bridge: "cni0", isGateway: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.250.1.0/24" }]], dataDir: join(d, "ipam") } }],
    });
    const e = new CniExecutor({ confDir: join(d, "net.d"), binDirs: [binDir], cacheDir: join(d, "cache"), execPrefix: ["ip", "netns", "exec", node] });
    const att = { containerId: "ref1", netns: `/run/netns/${pod}`, ifname: "eth0" };
    const res = await e.add(att);
    expect(res.ips?.[0]?.address).toBe("10.250.1.2/24");
    const addrs = ipJson<{ addr_info: { local: string }[] }[]>(pod, ["addr", "show", "dev", "eth0"]);
    expect(addrs[0]!.addr_info.map((a) => a.local)).toContain("10.250.1.2");
    expect(ipJson<unknown[]>(node, ["link", "show", "cni0"]).length).toBe(1); // created in the node, not here
    run(["ip", "netns", "exec", node, "ping", "-c1", "-W1", "10.250.1.2"]);
    await e.check(att);
    run(["ip", "-n", pod, "addr", "del", "10.250.1.2/24", "dev", "eth0"]);
    expect(await e.check(att).catch((x) => x)).toBeInstanceOf(CniPluginError);
    await e.del(att);
    expect(ipJson<unknown[]>(pod, ["link", "show"]).some((l) => (l as { ifname: string }).ifname === "eth0")).toBe(false);
    expect(existsSync(join(d, "ipam", "refnet", "10.250.1.2"))).toBe(false);
    await e.del(att); // DEL twice is fine
    const err = await e.check(att).catch((x) => x);
    expect(String(err)).toMatch(/no cached result/);
  });
});
