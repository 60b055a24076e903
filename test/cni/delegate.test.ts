// delegate(): a test IPAM executable (a shell script) found in CNI_PATH gets the caller's
// CNI_* environment with the command overridden and the exact stdin; its result of any
// version is decoded, its error passed on with the same code, its stderr passed through.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { delegate, findPlugin } from "../../src/cni/delegate.ts";
import { ErrorCode } from "../../src/cni/errors.ts";
import type { CniEnv } from "../../src/cni/types.ts";
import { cleanupTempDirs, cniErrorOf, cniErrorOfAsync, tempDir } from "./helpers.ts";

afterAll(cleanupTempDirs);

// Records its environment and stdin next to itself, then prints ./reply and exits with ./exit;
// with ./say present it also writes a line to stderr.
const FAKE_IPAM = `#!/bin/sh
d=$(dirname "$0")
env | grep '^CNI_' | sort > "$d/seen.env"
cat > "$d/seen.stdin"
if [ -f "$d/say" ]; then echo "fake-ipam: called with $CNI_COMMAND" >&2; fi
cat "$d/reply"
exit $(cat "$d/exit")
`;

const root = tempDir("delegate");
const emptyDir = `${root}/empty`;
const decoyDir = `${root}/decoy`; // holds a *directory* named like the plugin
const pluginDir = `${root}/bin`;
for (const d of [emptyDir, `${decoyDir}/fake-ipam`, pluginDir, `${root}/broken`]) mkdirSync(d, { recursive: true });
writeFileSync(`${pluginDir}/fake-ipam`, FAKE_IPAM);
chmodSync(`${pluginDir}/fake-ipam`, 0o755);
writeFileSync(`${emptyDir}/not-executable`, "#!/bin/sh\n");

function reply(out: object | string, exit = 0) {
  writeFileSync(`${pluginDir}/reply`, typeof out === "string" ? out : JSON.stringify(out));
  writeFileSync(`${pluginDir}/exit`, String(exit));
}

const ENV: CniEnv = {
  command: "ADD",
  containerId: "ctr-42",
  netns: "/run/netns/pod42",
  ifname: "eth1",
  args: { K8S_POD_NAME: "p" },
  rawArgs: "IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=ns",
  path: [emptyDir, decoyDir, pluginDir],
};
// Whitespace, key order and non-ASCII must reach the plugin byte for byte.
const STDIN = Buffer.from('{ "cniVersion":"1.1.0",\n  "name":"net", "type":"mncni",\t"ipam":{"type":"fake-ipam","note":"ünïcode ✓"} }\n');

const seenEnv = () =>
  Object.fromEntries(
    readFileSync(`${pluginDir}/seen.env`, "utf8")
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );

beforeEach(() => rmSync(`${pluginDir}/seen.env`, { force: true }));

describe("finding the plugin", () => {
  test("the first executable file of that name in CNI_PATH (directories skipped)", () => {
    expect(findPlugin("fake-ipam", ENV.path)).toBe(`${pluginDir}/fake-ipam`);
  });
  test("a missing plugin names the type and CNI_PATH", () => {
    const e = cniErrorOf(() => findPlugin("no-such-ipam", ENV.path));
    expect(e.message).toBe(`cannot find plugin "no-such-ipam" in CNI_PATH ${JSON.stringify(ENV.path.join(":"))}`);
    expect(cniErrorOf(() => findPlugin("not-executable", [emptyDir])).message).toContain('"not-executable"');
  });
  test.each(["../bin/fake-ipam", "/bin/sh", ".", ".."])("a type that is a path (%p) is refused", (type) => {
    expect(cniErrorOf(() => findPlugin(type, ENV.path)).code).toBe(ErrorCode.InvalidNetworkConfig);
  });
});

describe("running it", () => {
  test("same CNI_* environment with the command overridden, exact stdin, 1.1.0 result decoded", async () => {
    reply({ cniVersion: "1.1.0", ips: [{ address: "10.5.0.7/24", gateway: "10.5.0.1" }], routes: [{ dst: "0.0.0.0/0" }], dns: { nameservers: ["10.5.0.1"] } });
    const r = await delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN });
    expect(r).toEqual({ cniVersion: "1.1.0", ips: [{ address: "10.5.0.7/24", gateway: "10.5.0.1" }], routes: [{ dst: "0.0.0.0/0" }], dns: { nameservers: ["10.5.0.1"] } });
    expect(seenEnv()).toEqual({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "ctr-42",
      CNI_NETNS: "/run/netns/pod42",
      CNI_IFNAME: "eth1",
      CNI_ARGS: ENV.rawArgs,
      CNI_PATH: ENV.path.join(":"),
    });
    expect(Buffer.compare(readFileSync(`${pluginDir}/seen.stdin`), STDIN)).toBe(0);
  });

  test("the command is the one asked for, not the caller's (DEL after a failed ADD)", async () => {
    reply("");
    expect(await delegate({ type: "fake-ipam", command: "DEL", env: ENV, stdin: STDIN })).toBeUndefined();
    expect(seenEnv().CNI_COMMAND).toBe("DEL");
  });

  test("an empty CNI_NETNS (DEL of a gone pod) is passed as empty", async () => {
    reply("");
    await delegate({ type: "fake-ipam", command: "DEL", env: { ...ENV, command: "DEL", netns: "" }, stdin: STDIN });
    expect(seenEnv().CNI_NETNS).toBe("");
  });

  test("a 0.4.0-shaped result is decoded into the 1.x shape", async () => {
    reply({ cniVersion: "0.4.0", ips: [{ version: "4", address: "10.5.0.8/24", gateway: "10.5.0.1" }, { version: "6", address: "fd00:5::8/64" }], routes: [{ dst: "::/0", gw: "fd00:5::1" }] });
    expect(await delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN })).toEqual({
      cniVersion: "0.4.0",
      ips: [{ address: "10.5.0.8/24", gateway: "10.5.0.1" }, { address: "fd00:5::8/64" }],
      routes: [{ dst: "::/0", gw: "fd00:5::1" }],
    });
  });

  test("a 0.2.0-shaped result is decoded too", async () => {
    reply({ cniVersion: "0.2.0", ip4: { ip: "10.5.0.9/24", gateway: "10.5.0.1", routes: [{ dst: "0.0.0.0/0" }] } });
    expect(await delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN })).toEqual({
      cniVersion: "0.2.0",
      ips: [{ address: "10.5.0.9/24", gateway: "10.5.0.1" }],
      routes: [{ dst: "0.0.0.0/0" }],
    });
  });

  test("a result without cniVersion is in the version of the config it was given", async () => {
    reply({ ips: [{ version: "4", address: "10.5.0.10/24" }] });
    const stdin = Buffer.from(JSON.stringify({ cniVersion: "0.3.1", name: "net", type: "mncni", ipam: { type: "fake-ipam" } }));
    expect(await delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin })).toEqual({ cniVersion: "0.3.1", ips: [{ address: "10.5.0.10/24" }] });
  });

  test("its error JSON is passed on with the same code, msg and details", async () => {
    reply({ cniVersion: "1.1.0", code: 11, msg: "cannot lock pool: busy", details: "retry" }, 1);
    const e = await cniErrorOfAsync(() => delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN }));
    expect([e.code, e.message, e.details]).toEqual([11, "cannot lock pool: busy", "retry"]);
  });

  test("a failure without error JSON is code 999 with the exit code and output", async () => {
    reply("segfault or so", 3);
    const e = await cniErrorOfAsync(() => delegate({ type: "fake-ipam", command: "CHECK", env: ENV, stdin: STDIN }));
    expect(e.code).toBe(ErrorCode.Internal);
    expect(e.message).toContain("exit code 3");
    expect(e.message).toContain("segfault or so");
  });

  test("an ADD answer that is not JSON is code 6, one that is not a result is code 6 too", async () => {
    reply("not json");
    expect((await cniErrorOfAsync(() => delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN }))).code).toBe(ErrorCode.DecodingFailure);
    reply({ cniVersion: "1.1.0", ips: "10.0.0.1" });
    expect((await cniErrorOfAsync(() => delegate({ type: "fake-ipam", command: "ADD", env: ENV, stdin: STDIN }))).code).toBe(ErrorCode.DecodingFailure);
  });

  test("a plugin that cannot be executed (bad interpreter) is an I/O failure, code 5", async () => {
    writeFileSync(`${root}/broken/broken-ipam`, "#!/nonexistent/interpreter\n");
    chmodSync(`${root}/broken/broken-ipam`, 0o755);
    const e = await cniErrorOfAsync(() => delegate({ type: "broken-ipam", command: "ADD", env: { ...ENV, path: [`${root}/broken`] }, stdin: STDIN }));
    expect(e.code).toBe(ErrorCode.IOFailure);
    expect(e.message).toStartWith(`cannot execute plugin "${root}/broken/broken-ipam"`);
  });

  test("a missing plugin fails before anything runs", async () => {
    const e = await cniErrorOfAsync(() => delegate({ type: "host-local-x", command: "ADD", env: ENV, stdin: STDIN }));
    expect(e.message).toContain('"host-local-x"');
    expect(e.message).toContain(pluginDir);
  });
});

test("its stderr passes through to ours", () => {
  // Only a separate process shows where fd 2 of the delegated plugin goes.
  reply({ cniVersion: "1.1.0", code: 11, msg: "busy" }, 1);
  writeFileSync(`${pluginDir}/say`, "");
  const driver = `
    const { delegate } = await import(${JSON.stringify(resolve(import.meta.dir, "../../src/cni/delegate.ts"))});
    const env = ${JSON.stringify(ENV)};
    try { await delegate({ type: "fake-ipam", command: "STATUS", env, stdin: new Uint8Array() }); }
    catch (e) { console.log(JSON.stringify({ code: e.code })); }`;
  const p = Bun.spawnSync([process.execPath, "-e", driver], { stdout: "pipe", stderr: "pipe" });
  expect(p.stderr.toString()).toBe("fake-ipam: called with STATUS\n");
  rmSync(`${pluginDir}/say`);
  expect(JSON.parse(p.stdout.toString())).toEqual({ code: 11 });
});
