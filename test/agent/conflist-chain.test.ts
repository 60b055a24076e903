// The conflists mncni writes or documents, run as a runtime runs them (src/lab/executor.ts,
// a small libcni): every plugin of the chain, ADD / CHECK / DEL, with the reference plugins
// installed on this machine (/usr/lib/cni, Debian's containernetworking-plugins), in a
// throwaway node namespace. A runtime refuses the whole list when one plugin does not support
// its cniVersion, so these fail when the agent or the docs pick a version too new.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "bun";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { CniExecutor, CniPluginError, type RuntimeAttachment } from "../../src/lab/executor.ts";
import { REF_CNI_DIR, requireBinary } from "../helpers/binary.ts";
import { cleanupNetns, createNetns, inNetns, ipJson, netnsPath, run } from "../helpers/netns.ts";
import { nodeManifest } from "./lab.ts";

setDefaultTimeout(30_000);
const ROOT = resolve(import.meta.dir, "../..");
const HOST_PORT = 18081;
let tmp: string;
let node: string;

/** What a reference plugin answers to VERSION: the independent view of what it supports. */
function refVersions(plugin: string): string[] {
  const p = spawnSync([join(REF_CNI_DIR, plugin)], { env: { CNI_COMMAND: "VERSION" }, stdin: Buffer.from('{"cniVersion":"0.4.0"}'), stdout: "pipe" });
  return JSON.parse(p.stdout.toString()).supportedVersions;
}

/** A CNI bin dir as `make`/an operator sets it up: mncni's binaries plus reference plugins. */
function binDir(name: string, refPlugins: string[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  copyFileSync(join(ROOT, "dist/mncni-forward"), join(dir, "mncni"));
  symlinkSync(requireBinary(), join(dir, "mncni-core"));
  symlinkSync(requireBinary(), join(dir, "mncni-ipam"));
  for (const p of refPlugins) symlinkSync(join(REF_CNI_DIR, p), join(dir, p));
  return dir;
}

function agentOnce(bin: string, conf: string, extra: string[]): { code: number; log: string } {
  const logFile = join(tmp, `agent-${Math.random().toString(36).slice(2)}.log`);
  const r = run(
    [
      "ip", "netns", "exec", node, requireBinary(), "agent", "--once", "--node-name", "n1", "--source", `dir:${join(tmp, "manifests")}`,
      "--cni-conf-dir", conf, "--cni-bin-dir", bin, "--cluster-cidr", "10.244.0.0/16", "--ipam-data-dir", join(tmp, "ipam"),
      "--cni-log-file", join(tmp, "cni.log"), "--metrics-addr", "off", "--cni-socket", "off", "--state-file", join(tmp, "agent-run.json"), "--log-file", logFile, ...extra,
    ],
    { allowFail: true },
  );
  return { code: r.code, log: existsSync(logFile) ? readFileSync(logFile, "utf8") : r.stderr };
}

const dnatRules = () => inNetns(node, ["iptables-save", "-t", "nat"]).stdout.split("\n").filter((l) => l.includes(`--dport ${HOST_PORT}`));
const podAddrs = (pod: string) =>
  ipJson<{ ifname: string; addr_info: { family: string; local: string; scope: string }[] }[]>(pod, ["addr", "show", "eth0"])
    .flatMap((l) => l.addr_info)
    .filter((a) => a.scope === "global")
    .map((a) => a.local);

/**
 * ADD, CHECK and DEL of one pod through the executor, checked in the kernel. The reference
 * portmap 1.1.1 fails its own CHECK whatever precedes it (containernetworking/plugins#819):
 * that failure, and only that one, is tolerated, after mncni's CHECK has passed.
 */
async function addCheckDel(exec: CniExecutor, id: string, expectAddrs: RegExp[]): Promise<void> {
  const pod = createNetns("mnc-pod");
  const att: RuntimeAttachment = {
    containerId: id,
    netns: netnsPath(pod),
    ifname: "eth0",
    capabilityArgs: { portMappings: [{ hostPort: HOST_PORT, containerPort: 8080, protocol: "tcp" }], bandwidth: { ingressRate: 1_000_000, ingressBurst: 100_000 } },
  };
  const result = (await exec.add(att)) as { ips: { address: string }[] };
  const addrs = podAddrs(pod);
  expect(addrs).toHaveLength(expectAddrs.length);
  expectAddrs.forEach((re, i) => expect(addrs[i]).toMatch(re));
  expect(result.ips.map((i) => i.address.split("/")[0]).sort()).toEqual([...addrs].sort());
  const list = exec.loadNetwork();
  if (list.plugins.some((p) => p.type === "portmap")) expect(dnatRules().length).toBeGreaterThan(0);
  const from = exec.calls.length;
  const err = await exec.check(att).then(() => undefined, (e: Error) => e);
  expect(exec.calls[from]).toMatchObject({ command: "CHECK", plugin: "mncni", ok: true });
  if (err) {
    expect(err).toBeInstanceOf(CniPluginError);
    expect((err as CniPluginError).plugin).toBe("portmap");
    expect((err as CniPluginError).msg).toContain("could not check ipv6 dnat");
  }
  await exec.del(att);
  expect(run(["ip", "-n", pod, "link", "show", "eth0"], { allowFail: true }).code).not.toBe(0);
  expect(dnatRules()).toEqual([]);
}

beforeAll(() => {
  requireBinary();
  tmp = mkdtempSync(`/tmp/mncni-chain-${process.pid}-`);
  mkdirSync(join(tmp, "manifests"));
  writeFileSync(join(tmp, "manifests/n1.yaml"), stringify(nodeManifest("n1", "10.99.5.11", ["10.244.1.0/24"])));
  node = createNetns("mnc-node");
});

afterAll(() => {
  cleanupNetns();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the agent's conflist with the reference plugins", () => {
  test("--chain-portmap: the version is the highest both support up to 1.0.0, and the chain runs ADD/CHECK/DEL", async () => {
    const bin = binDir("bin-portmap", ["portmap"]);
    const conf = join(tmp, "conf-portmap");
    const r = agentOnce(bin, conf, ["--chain-portmap"]);
    expect(r.log).not.toContain('"level":"error"');
    expect(r.code).toBe(0);
    const list = JSON.parse(readFileSync(join(conf, "10-mncni.conflist"), "utf8"));
    const expected = refVersions("portmap").filter((v) => ["0.3.0", "0.3.1", "0.4.0", "1.0.0"].includes(v)).at(-1);
    expect(list.cniVersion).toBe(expected);
    expect(list.plugins.map((p: { type: string }) => p.type)).toEqual(["mncni", "portmap"]);
    const exec = new CniExecutor({ confDir: conf, binDirs: [bin], cacheDir: join(tmp, "cache-portmap"), execPrefix: ["ip", "netns", "exec", node] });
    await addCheckDel(exec, "agentchain1", [/^10\.244\.1\.\d+$/]);
  });

  test("without chained plugins the agent writes 1.0.0, though mncni speaks 1.1.0: containerd 1.6/1.7 accept no more (#29)", () => {
    const bin = binDir("bin-alone", []);
    const conf = join(tmp, "conf-alone");
    expect(agentOnce(bin, conf, []).code).toBe(0);
    // The installed mncni itself says it speaks 1.1.0: the ceiling is the runtime's, not the plugin's.
    const speaks = spawnSync([join(bin, "mncni")], { env: { CNI_COMMAND: "VERSION" }, stdin: Buffer.from('{"cniVersion":"0.4.0"}'), stdout: "pipe" });
    expect(JSON.parse(speaks.stdout.toString()).supportedVersions).toContain("1.1.0");
    expect(JSON.parse(readFileSync(join(conf, "10-mncni.conflist"), "utf8")).cniVersion).toBe("1.0.0");
    // --cni-version 1.1.0 for a runtime known to take it (containerd >= 2.0).
    const conf11 = join(tmp, "conf-alone-11");
    expect(agentOnce(bin, conf11, ["--cni-version", "1.1.0"]).code).toBe(0);
    expect(JSON.parse(readFileSync(join(conf11, "10-mncni.conflist"), "utf8")).cniVersion).toBe("1.1.0");
  });

  test("--cni-version pins the version; an unknown one is refused naming the flag", () => {
    const bin = binDir("bin-pinned", ["portmap"]);
    const conf = join(tmp, "conf-pinned");
    expect(agentOnce(bin, conf, ["--chain-portmap", "--cni-version", "0.4.0"]).code).toBe(0);
    expect(JSON.parse(readFileSync(join(conf, "10-mncni.conflist"), "utf8")).cniVersion).toBe("0.4.0");
    const bad = agentOnce(bin, join(tmp, "conf-bad"), ["--cni-version", "2.0.0"]);
    expect(bad.code).toBe(2);
    expect(bad.log).toContain('cannot use cniVersion "2.0.0"');
    expect(existsSync(join(tmp, "conf-bad"))).toBe(false);
  });

  test("a chained plugin that is not installed: no conflist, not converged, the reason logged", () => {
    const bin = binDir("bin-missing", []);
    const conf = join(tmp, "conf-missing");
    const r = agentOnce(bin, conf, ["--chain-portmap"]);
    expect(r.code).toBe(1);
    expect(existsSync(join(conf, "10-mncni.conflist"))).toBe(false);
    expect(r.log).toContain('cannot find plugin \\"portmap\\" in');
  });
});

describe("the documented chained conflist (docs/configuration.md) with the reference plugins", () => {
  /** The first ```json block after "## Example conflist", with paths moved into the test's temp dir. */
  function documented(): Record<string, any> {
    const md = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
    const block = md.split("## Example conflist")[1]!.match(/```json\n([\s\S]*?)```/)![1]!;
    const list = JSON.parse(block);
    const mncni = list.plugins[0];
    mncni.ipam.dataDir = join(tmp, "ipam-doc");
    mncni.logFile = join(tmp, "cni-doc.log");
    // Nothing listens there: the plugin runs the call itself, as it does while no agent serves.
    mncni.agentSocket = join(tmp, "no-agent.sock");
    return list;
  }

  function executor(name: string, list: object): CniExecutor {
    const conf = join(tmp, `conf-${name}`);
    mkdirSync(conf);
    writeFileSync(join(conf, "10-doc.conflist"), JSON.stringify(list));
    return new CniExecutor({ confDir: conf, binDirs: [binDir(`bin-${name}`, []), REF_CNI_DIR], cacheDir: join(tmp, `cache-${name}`), execPrefix: ["ip", "netns", "exec", node] });
  }

  test("as written: mncni, portmap, bandwidth, tuning (dual-stack)", async () => {
    const list = documented();
    expect(list.plugins.map((p: { type: string }) => p.type)).toEqual(["mncni", "portmap", "bandwidth", "tuning"]);
    await addCheckDel(executor("doc", list), "docchain1", [/^10\.244\.1\.\d+$/, /^fd00:10:244:1:/]);
  });

  test("with IPAM delegated to the reference host-local (the same ranges)", async () => {
    const list = documented();
    list.plugins[0].ipam = { ...list.plugins[0].ipam, type: "host-local", dataDir: join(tmp, "ipam-host-local") };
    await addCheckDel(executor("hostlocal", list), "docchain2", [/^10\.244\.1\.\d+$/, /^fd00:10:244:1:/]);
    // host-local kept its reservations on disk and released them at DEL.
    expect(existsSync(join(tmp, "ipam-host-local/k8s-pod-network"))).toBe(true);
    expect(run(["ls", join(tmp, "ipam-host-local/k8s-pod-network")]).stdout.split("\n").filter((f) => /^[0-9a-f.:]+$/.test(f))).toEqual([]);
  });
});
