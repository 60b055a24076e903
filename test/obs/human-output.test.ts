// Human output never passes a control character from data to the terminal: a pod name from
// CNI_ARGS written into the invocation log by a real call of the compiled plugin (a CHECK
// refused for its config: it touches no kernel state) is shown escaped by `mncni trace`,
// while `--json` keeps it as it was; a name given on the command line is escaped in the error
// that quotes it. The escape itself: colours the renderers add pass only when colour is on.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireBinary } from "../helpers/binary.ts";
import { run } from "../helpers/netns.ts";
import { textLogger } from "../../src/base/log.ts";
import { escapeControls } from "../../src/base/text.ts";

const dir = mkdtempSync(join(tmpdir(), "mncni-human-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Clear the screen, home the cursor, a carriage return that would overwrite the line, a fake
// second line, and a right-to-left override.
const HOSTILE = "evil\x1b[2J\x1b[H\rok\nfake line\u202egnp.exe";
/** Any control character but the line breaks the renderer puts between its lines. */
const CONTROLS = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe("a hostile pod name in the invocation log", () => {
  const logFile = join(dir, "cni.log");
  const conf = join(dir, "conf.json");

  test("mncni trace shows it escaped, on one line; --json keeps it", () => {
    const bin = requireBinary();
    // No ipam section: the plugin refuses the config (code 7) after logging who called.
    writeFileSync(conf, JSON.stringify({ cniVersion: "1.0.0", name: "podnet", type: "mncni", logFile }));
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      CNI_COMMAND: "CHECK",
      CNI_CONTAINERID: "ctr-human",
      CNI_NETNS: "/run/netns/mncni-human-none",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${HOSTILE}`,
    };
    const call = run(["sh", "-c", `exec "$0" < "$1"`, bin, conf], { env, allowFail: true });
    expect(JSON.parse(call.stdout).code).toBe(7);

    const text = run([bin, "trace", "--log-file", logFile]).stdout;
    expect(text).not.toMatch(CONTROLS);
    const line = text.split("\n").find((l) => l.includes("CHECK"))!;
    expect(line).toContain("default/evil\\x1b[2J\\x1b[H\\x0dok\\x0afake line\\u{202e}gnp.exe");
    expect(text).not.toContain("\nfake line");

    const json = run([bin, "trace", "--log-file", logFile, "--json"]).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(json.find((l) => l.call)!.call.podName).toBe(HOSTILE);
  });

  test("on a terminal, colours are the renderer's only: a name's own colour codes are escaped", () => {
    const bin = requireBinary();
    const ttyLog = join(dir, "tty.log");
    writeFileSync(conf, JSON.stringify({ cniVersion: "1.0.0", name: "podnet", type: "mncni", logFile: ttyLog }));
    // Bold, then concealed text: codes the renderer uses itself (1) and one it never does (8).
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", CNI_COMMAND: "CHECK", CNI_CONTAINERID: "ctr-tty", CNI_NETNS: "/run/netns/mncni-human-none", CNI_IFNAME: "eth0", CNI_PATH: "/opt/cni/bin", CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=evil\x1b[1mbold\x1b[8mhidden" };
    run(["sh", "-c", `exec "$0" < "$1"`, bin, conf], { env, allowFail: true });
    // script(1) gives the command a terminal: colour is on.
    const { NO_COLOR: _, ...noNoColor } = process.env as Record<string, string>;
    const out = run(["script", "-qec", `"${bin}" trace --log-file "${ttyLog}"`, "/dev/null"], { env: { ...noNoColor, TERM: "xterm" } }).stdout;
    expect(out).toContain("\x1b[31merror 7"); // the renderer's red, for the error
    expect(out).toContain("default/evil\\x1b[1mbold\\x1b[8mhidden");
    // Every escape sequence left is one of the renderer's colours.
    expect(out.replace(/\x1b\[(?:0|1|2|31|32|33)m/g, "")).not.toContain("\x1b");
    expect(out.match(/\x1b\[1m/g)?.length).toBe(1); // the header's bold only
  });

  test("an error that quotes a name from the command line shows it escaped", () => {
    const bin = requireBinary();
    const r = run([bin, "explain", `pod\x1b[2J`, "node", "--cni-conf-dir", dir, "--cache-dir", dir], { allowFail: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('cannot find source "pod\\x1b[2J"');
    expect(r.stderr).not.toMatch(CONTROLS);
  });
});

test("the agent's text log (for a person at a terminal) escapes them, one line per entry", () => {
  const lines: string[] = [];
  textLogger((l) => void lines.push(l)).warn(`cannot program pod "${HOSTILE}"`, { pod: HOSTILE });
  expect(lines.length).toBe(1);
  expect(lines[0]!.trimEnd()).not.toMatch(CONTROLS);
  expect(lines[0]!.trimEnd()).not.toContain("\n");
  expect(lines[0]).toContain('cannot program pod "evil\\x1b[2J');
});

describe("escapeControls", () => {
  test("line breaks and tabs pass only in a whole text; every other control is escaped", () => {
    expect(escapeControls("a\tb\nc\x07\x9b\u2066", { lines: true })).toBe("a\tb\nc\\x07\\x9b\\u{2066}");
    expect(escapeControls("a\tb\nc")).toBe("a\\x09b\\x0ac");
  });

  test("the renderers' own colours pass when colour is on, no other escape sequence does", () => {
    expect(escapeControls("\x1b[31mred\x1b[0m \x1b[2J", { colour: true })).toBe("\x1b[31mred\x1b[0m \\x1b[2J");
    expect(escapeControls("\x1b[31mred\x1b[0m")).toBe("\\x1b[31mred\\x1b[0m");
  });
});
