// `mncni ui`'s address flags, with the executable: loopback by default (no token); any other
// address only with a token, made up and printed when none is given, which every /api/
// request must then carry. Run in a throwaway namespace (its own loopback and addresses).
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { cleanupNetns, createNetns, inNetns } from "../helpers/netns.ts";
import { printedAddress } from "../helpers/ui-server.ts";

const dir = mkdtempSync(join(tmpdir(), "mncni-ui-cli-"));
afterAll(() => {
  cleanupNetns();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `mncni ui ARGS` in the namespace: the address it printed, and how to stop it. */
async function startUi(ns: string, args: string[]): Promise<{ url: string; stop: () => Promise<unknown> }> {
  const p = Bun.spawn(["ip", "netns", "exec", ns, MNCNI_BIN, "ui", "--port", "0", "--flow-log", join(dir, "flows.log"), "--cni-conf-dir", dir, "--cache-dir", dir, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, NODE_NAME: "n1" } });
  return { url: await printedAddress(p, 20_000), stop: () => (p.kill("SIGTERM"), p.exited) };
}

/** The HTTP status of a GET from inside the namespace. */
const status = (ns: string, url: string) => inNetns(ns, [process.execPath, "-e", `const r = await fetch(${JSON.stringify(url)}); process.stdout.write(String(r.status));`]).stdout;

test("loopback by default, no token", async () => {
  const ns = createNetns("mnuic");
  inNetns(ns, ["ip", "link", "set", "lo", "up"]);
  const s = await startUi(ns, []);
  try {
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(status(ns, `${s.url}api/state`)).toBe("200");
  } finally {
    await s.stop();
  }
});

test("another address: a token is made up, printed, and required", async () => {
  const ns = createNetns("mnuic");
  inNetns(ns, ["ip", "link", "set", "lo", "up"]);
  inNetns(ns, ["ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1"]);
  inNetns(ns, ["ip", "addr", "add", "192.0.2.9/24", "dev", "a0"]);
  for (const l of ["a0", "a1"]) inNetns(ns, ["ip", "link", "set", l, "up"]);
  const s = await startUi(ns, ["--address", "192.0.2.9"]);
  try {
    const m = /^http:\/\/192\.0\.2\.9:(\d+)\/\?token=([A-Za-z0-9_-]{20,})$/.exec(s.url);
    expect(m).not.toBeNull();
    const base = `http://192.0.2.9:${m![1]}`;
    expect(status(ns, `${base}/api/state`)).toBe("401");
    expect(status(ns, `${base}/api/state?token=${m![2]}`)).toBe("200");
  } finally {
    await s.stop();
  }
});
