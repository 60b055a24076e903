// The native forwarder on odd input, built with AddressSanitizer and UBSan: truncated and
// malformed configs, escapes, oversized paths, NUL bytes, a 1 MB config. Whatever it gets,
// its answer (exit code and CNI JSON) must be exactly what mncni itself answers for the same
// call, and the sanitizers must stay silent. Every config here fails validation, so nothing
// is created; the calls run in a throwaway node namespace next to a live server.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createConnection } from "node:net";
import { parseReply, SERVE_PROTOCOL } from "../../src/serve/protocol.ts";
import { resolve } from "node:path";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { run } from "../helpers/netns.ts";
import { destroyAllNodes, hostVeths, type TestNode } from "../plugin/fixture.ts";
import { servedNode, stopServers } from "./serve-fixture.ts";

const SOURCE = resolve(import.meta.dir, "../../src/forward/forward.c");
let dir = "";
let node: TestNode;
let socket = "";

/** The server's build ID, as it states it when declining a request from another build. */
function serverBuild(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    let got = "";
    const c = createConnection(path, () => c.end(JSON.stringify({ protocol: SERVE_PROTOCOL, build: "probe", netns: "", env: {}, stdin: "{}" })));
    c.on("data", (d) => (got += d.toString()));
    c.on("end", () => {
      const reply = parseReply(got);
      ok(reply && "fallback" in reply ? (/server build (\S+)/.exec(reply.fallback)?.[1] ?? "") : "");
    });
    c.on("error", fail);
  });
}

beforeAll(async () => {
  ({ node, socket } = await servedNode());
  dir = mkdtempSync(`/tmp/mncni-fwd-test-${process.pid}-`);
  const build = await serverBuild(socket);
  expect(build).not.toBe("");
  // Not static: the sanitizers' runtime is a shared library. mncni-core beside it, as installed.
  const cc = run(["cc", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1", `-DMNCNI_BUILD="${build}"`, "-o", `${dir}/mncni`, SOURCE], { allowFail: true });
  expect(cc.stderr).toBe("");
  symlinkSync(resolve(MNCNI_BIN), `${dir}/mncni-core`);
});
afterAll(async () => {
  await stopServers();
  destroyAllNodes();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => expect(hostVeths(node.ns)).toEqual([]));

const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "odd",
  CNI_NETNS: "/run/netns/does-not-exist",
  CNI_IFNAME: "eth0",
  MNCNI_LOG_FILE: `${node.dir}/fallback.log`,
  ...extra,
});

function both(stdin: string) {
  const forwarded = run(["ip", "netns", "exec", node.ns, `${dir}/mncni`], { stdin, env: env(), allowFail: true });
  const direct = run(["ip", "netns", "exec", node.ns, MNCNI_BIN], { stdin, env: env({ MNCNI_NO_AGENT: "1" }), allowFail: true });
  return { forwarded, direct };
}

describe("native forwarder on odd input (ASan + UBSan build)", () => {
  const live = () => socket;
  const cases: [string, () => string][] = [
    ["empty stdin", () => ""],
    ["not JSON", () => "not json at all"],
    ["key cut after its name", () => '{"agentSocket"'],
    ["key cut after the colon", () => '{"agentSocket":'],
    ["value cut after its quote", () => '{"agentSocket": "'],
    ["value with an escape", () => `{"agentSocket": "${live()}\\u0000x", "bogus": 1}`],
    ["relative path", () => '{"cniVersion":"1.0.0","name":"n","type":"mncni","agentSocket":"cni.sock"}'],
    ["path longer than a socket address", () => `{"cniVersion":"1.0.0","name":"n","type":"mncni","agentSocket":"/${"a".repeat(300)}"}`],
    ["NUL bytes and the key inside garbage", () => `\u0000\u0001"agentSocket"\u0000:"${live()}"\u0000`],
    ["live socket, unknown field (served error)", () => JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "mncni", agentSocket: live(), bogus: true })],
    ["live socket, unsupported cniVersion", () => JSON.stringify({ cniVersion: "9.9.9", name: "n", type: "mncni", agentSocket: live() })],
    ["live socket named only in a nested field", () => JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "mncni", args: { a: { agentSocket: live() } }, bogus: 1 })],
    ["1 MB config, quotes and control characters in it", () =>
      JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "mncni", agentSocket: live(), bogus: 1, dns: { search: Array.from({ length: 40_000 }, (_, i) => `"q\\${i}\t`) } })],
  ];
  for (const [what, input] of cases) {
    test(what, () => {
      const { forwarded, direct } = both(input());
      expect(forwarded.stderr).not.toMatch(/AddressSanitizer|runtime error|LeakSanitizer/);
      expect(forwarded.code).toBe(direct.code);
      expect(forwarded.code).not.toBe(0);
      expect(JSON.parse(forwarded.stdout)).toEqual(JSON.parse(direct.stdout));
    });
  }
});
