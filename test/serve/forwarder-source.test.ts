// The native forwarder (src/forward/forward.c) repeats a few facts of the TypeScript side:
// the serve protocol number, the environment it hands over, the hand-off flags, and the CNI
// versions it may answer an error in. Read from the C source and compared with the
// definitions (a generated header would need a build step the forwarder does not have
// otherwise; a test keeps the C file self-contained and still catches drift).
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "../../src/cni/types.ts";
import { FLAGS, FORWARDED_VARS, SERVE_PROTOCOL } from "../../src/serve/protocol.ts";
import { MNCNI_BIN } from "../helpers/binary.ts";

const SOURCE = readFileSync(resolve(import.meta.dir, "../../src/forward/forward.c"), "utf8");
const FORWARDER = resolve(dirname(MNCNI_BIN), "mncni-forward");

function define(name: string): string {
  const m = new RegExp(`^#define ${name} "([^"]*)"$`, "m").exec(SOURCE);
  if (!m) throw new Error(`forward.c defines no string ${name}`);
  return m[1]!;
}

function stringArray(name: string): string[] {
  const m = new RegExp(`static const char \\*const ${name}\\[\\] = \\{([^}]*)\\};`).exec(SOURCE);
  if (!m) throw new Error(`forward.c has no array ${name}`);
  return [...m[1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]!);
}

describe("forward.c repeats the TypeScript side's definitions", () => {
  test("protocol number, forwarded variables, hand-off flags, versions", () => {
    expect(define("SERVE_PROTOCOL")).toBe(String(SERVE_PROTOCOL));
    expect(stringArray("FORWARDED_VARS")).toEqual([...FORWARDED_VARS]);
    expect({ noAgent: define("FLAG_NO_AGENT"), agentFailed: define("FLAG_AGENT_FAILED"), timeoutMs: define("FLAG_TIMEOUT_MS") }).toEqual({ ...FLAGS });
    expect(stringArray("SUPPORTED_VERSIONS")).toEqual([...SUPPORTED_VERSIONS]);
    expect(define("CURRENT_VERSION")).toBe(CURRENT_VERSION);
  });

  test("the flags and the protocol number are used by name, not spelled out again", () => {
    for (const literal of Object.values(FLAGS)) {
      expect(SOURCE.split(`"${literal}"`).length - 1).toBe(1);
    }
    expect(SOURCE).toContain('"{\\"protocol\\":" SERVE_PROTOCOL');
  });
});

describe("the forwarder's own error answer (mncni-core cannot be run)", () => {
  test("is in the config's cniVersion when supported, else the current one, as errorAnswer does", () => {
    const dir = mkdtempSync("/tmp/mnb-fwalone-");
    try {
      const lone = `${dir}/mncni`; // nothing beside it: no mncni-core to run
      copyFileSync(FORWARDER, lone);
      Bun.spawnSync(["chmod", "755", lone]);
      for (const [asked, answered] of [
        ["0.4.0", "0.4.0"],
        ["1.0.0", "1.0.0"],
        ["9.9.9", CURRENT_VERSION],
      ]) {
        const p = Bun.spawnSync([lone], {
          env: { PATH: "/usr/bin:/bin", CNI_COMMAND: "ADD", CNI_CONTAINERID: "x", CNI_NETNS: "/run/netns/none", CNI_IFNAME: "eth0" },
          stdin: Buffer.from(JSON.stringify({ cniVersion: asked, name: "n", type: "mncni" })),
        });
        expect(p.exitCode).toBe(1);
        expect(JSON.parse(p.stdout.toString())).toMatchObject({ cniVersion: answered, code: 999, msg: expect.stringContaining("mncni-core") });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
