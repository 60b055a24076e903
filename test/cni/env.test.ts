// parseEnv: the CNI_* variables each verb needs, the syntax of container IDs and interface
// names, and all problems of one call reported together (code 4, every variable named).
import { describe, expect, test } from "bun:test";
import { parseCniArgs, parseEnv } from "../../src/cni/env.ts";
import { ErrorCode } from "../../src/cni/errors.ts";
import type { CniCommand } from "../../src/cni/types.ts";
import { cniErrorOf } from "./helpers.ts";

const FULL = {
  CNI_CONTAINERID: "ctr-1",
  CNI_NETNS: "/run/netns/pod1",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
  CNI_PATH: "/opt/cni/bin:/usr/lib/cni",
};
const OPTIONAL_VARS = Object.keys(FULL);

/** What the spec requires per verb (cni-notes.md, "Required env"). */
const REQUIRED: Record<CniCommand, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  GC: ["CNI_PATH"],
  STATUS: [],
  VERSION: [],
};

describe("CNI_COMMAND", () => {
  test("missing or empty is code 4 naming CNI_COMMAND", () => {
    for (const env of [{}, { CNI_COMMAND: "" }]) {
      const e = cniErrorOf(() => parseEnv({ ...FULL, ...env }));
      expect(e.code).toBe(ErrorCode.InvalidEnv);
      expect(e.message).toContain("CNI_COMMAND");
    }
  });

  test("an unknown verb (or wrong case) is code 4 naming the value", () => {
    for (const cmd of ["FOO", "add", "ADD "]) {
      const e = cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: cmd }));
      expect(e.code).toBe(ErrorCode.InvalidEnv);
      expect(e.message).toContain(`CNI_COMMAND "${cmd}"`);
    }
  });
});

describe.each(Object.entries(REQUIRED) as [CniCommand, string[]][])("%s", (cmd, required) => {
  test("accepts the full environment", () => {
    const env = parseEnv({ ...FULL, CNI_COMMAND: cmd });
    expect(env.command).toBe(cmd);
    expect(env.path).toEqual(["/opt/cni/bin", "/usr/lib/cni"]);
  });

  test(`with nothing but CNI_COMMAND: ${required.length ? `all of ${required.join(", ")} reported at once` : "accepted"}`, () => {
    if (required.length === 0) {
      expect(parseEnv({ CNI_COMMAND: cmd })).toEqual({ command: cmd, containerId: "", netns: "", ifname: "", args: {}, rawArgs: "", path: [] });
      return;
    }
    const e = cniErrorOf(() => parseEnv({ CNI_COMMAND: cmd }));
    expect(e.code).toBe(ErrorCode.InvalidEnv);
    for (const v of required) expect(e.message).toContain(`${v} is missing`);
    for (const v of OPTIONAL_VARS.filter((v) => !required.includes(v))) expect(e.message).not.toContain(v);
  });

  test("each required variable alone, missing or empty, is named", () => {
    for (const v of required) {
      for (const value of [undefined, ""]) {
        const e = cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: cmd, [v]: value }));
        expect(e.code).toBe(ErrorCode.InvalidEnv);
        expect(e.message).toBe(`required env variable ${v} is missing`);
      }
    }
  });
});

test("DEL accepts an empty CNI_NETNS (the namespace may be gone)", () => {
  expect(parseEnv({ ...FULL, CNI_COMMAND: "DEL", CNI_NETNS: "" }).netns).toBe("");
});

test("every problem of one call is reported in one error", () => {
  const e = cniErrorOf(() => parseEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "-bad", CNI_IFNAME: "a/b", CNI_ARGS: "novalue" }));
  expect(e.code).toBe(ErrorCode.InvalidEnv);
  const parts = e.message.split("; ");
  expect(parts).toHaveLength(4);
  expect(parts[0]).toStartWith('invalid env variable CNI_CONTAINERID "-bad"');
  expect(parts[1]).toBe("required env variable CNI_NETNS is missing");
  expect(parts[2]).toStartWith('invalid env variable CNI_IFNAME "a/b"');
  expect(parts[3]).toStartWith('invalid env variable CNI_ARGS "novalue"');
});

describe("container ID syntax", () => {
  const ok = ["a", "0", "abc123", "a1_b.c-d", "0123456789abcdef".repeat(4), "k8s_POD.x-1"];
  const bad = ["-abc", "_abc", ".abc", "..", "a/b", "../etc", "a b", "a\tb", "a:b", "a\nb", "ä", "a$b"];
  test.each(ok)("accepts %p", (id) => {
    expect(parseEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_CONTAINERID: id }).containerId).toBe(id);
  });
  test.each(bad)("rejects %p with code 4", (id) => {
    const e = cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_CONTAINERID: id }));
    expect(e.code).toBe(ErrorCode.InvalidEnv);
    expect(e.message).toStartWith(`invalid env variable CNI_CONTAINERID ${JSON.stringify(id)}`);
  });
});

describe("interface name syntax", () => {
  // The spec only forbids empty, >= 16 bytes, '.', '..', '/', ':' and whitespace; a leading '-'
  // is a legal interface name (the reference ValidateInterfaceName accepts it too).
  const ok = ["eth0", "net1.100", "x".repeat(15), "ä".repeat(7), "-eth0", "veth_a-b"];
  const bad: [string, string][] = [
    ["x".repeat(16), "16 bytes"],
    ["ä".repeat(8), "8 characters but 16 bytes"],
    [".", "dot"],
    ["..", "dot-dot"],
    ["a/b", "slash"],
    ["/", "slash alone"],
    ["a:b", "colon (alias syntax)"],
    ["a b", "space"],
    ["a\tb", "tab"],
    ["eth0\n", "newline"],
    ["a\u00a0b", "no-break space"],
  ];
  test.each(ok)("accepts %p", (name) => {
    expect(parseEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_IFNAME: name }).ifname).toBe(name);
  });
  test.each(bad)("rejects %p (%s) with code 4", (name) => {
    const e = cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_IFNAME: name }));
    expect(e.code).toBe(ErrorCode.InvalidEnv);
    expect(e.message).toStartWith(`invalid env variable CNI_IFNAME ${JSON.stringify(name)}`);
  });
  test("invalid values are rejected by every verb that receives them, except VERSION", () => {
    for (const cmd of ["ADD", "DEL", "CHECK", "STATUS", "GC"] as const) {
      expect(cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: cmd, CNI_IFNAME: ".." })).code).toBe(ErrorCode.InvalidEnv);
    }
    expect(parseEnv({ ...FULL, CNI_COMMAND: "VERSION", CNI_IFNAME: "..", CNI_CONTAINERID: "/x" }).command).toBe("VERSION");
  });
});

describe("CNI_ARGS", () => {
  test("parsed into pairs, kept raw for delegated plugins", () => {
    const env = parseEnv({ ...FULL, CNI_COMMAND: "ADD" });
    expect(env.args).toEqual({ IgnoreUnknown: "1", K8S_POD_NAMESPACE: "default", K8S_POD_NAME: "web-0" });
    expect(env.rawArgs).toBe(FULL.CNI_ARGS);
  });
  test("values may contain '=' and be empty; empty pairs are skipped", () => {
    expect(parseCniArgs("A=b=c;;B=;C=x")).toEqual({ A: "b=c", B: "", C: "x" });
  });
  test.each(["novalue", "=v", "A=1;junk"])("%p is code 4 naming CNI_ARGS", (raw) => {
    const e = cniErrorOf(() => parseEnv({ ...FULL, CNI_COMMAND: "ADD", CNI_ARGS: raw }));
    expect(e.code).toBe(ErrorCode.InvalidEnv);
    expect(e.message).toContain("CNI_ARGS");
  });
});

test("CNI_PATH drops empty entries", () => {
  expect(parseEnv({ CNI_COMMAND: "GC", CNI_PATH: "/a::/b:" }).path).toEqual(["/a", "/b"]);
});
