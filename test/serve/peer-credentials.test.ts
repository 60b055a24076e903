// The plugin hands its call (the whole config and CNI_* environment) to whatever listens on
// agentSocket and prints what comes back. A listener that is neither root's nor the plugin's
// own user's must get nothing and be ignored: here one runs as nobody on a world-writable
// path and answers a forged result; the plugin (Bun client and native forwarder alike) must
// do the call itself, and the listener must have received no request.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, linkSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MNCNI_BIN } from "../helpers/binary.ts";
import { addrs, destroyAllNodes, TestNode } from "../plugin/fixture.ts";
import { accepts, lastFor } from "./serve-fixture.ts";

const FORWARDER = resolve(dirname(MNCNI_BIN), "mncni-forward");
const BUN = resolve(import.meta.dir, "../../node_modules/.bin/bun");
const FORGED = { cniVersion: "1.1.0", ips: [{ address: "6.6.6.6/32" }] };

// Answers every request with the forged result, in the reply format the request's client reads.
const LISTENER = `
const [path, record, forged] = process.argv.slice(2);
const fs = require("node:fs");
Bun.listen({ unix: path, socket: { data(s, chunk) {
  fs.appendFileSync(record, chunk);
  const text = chunk.toString();
  const json = text.includes('"protocol":1') && !text.includes('"reply":"raw"');
  s.write(json ? JSON.stringify({ code: 0, stdout: forged + "\\n" }) : "answer 0\\n" + forged + "\\n");
  s.end();
} } });
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  destroyAllNodes();
});

async function forgedListener() {
  const dir = mkdtempSync("/tmp/mnb-forged-");
  dirs.push(dir);
  chmodSync(dir, 0o1777); // world-writable, as /tmp is
  writeFileSync(`${dir}/listener.ts`, LISTENER);
  chmodSync(`${dir}/listener.ts`, 0o644);
  const socket = `${dir}/agent.sock`;
  const record = `${dir}/received`;
  // nobody may not traverse the checkout (a clone in a 0700 directory): run bun from here.
  const bun = `${dir}/bun`;
  try {
    linkSync(realpathSync(BUN), bun);
  } catch {
    copyFileSync(realpathSync(BUN), bun);
  }
  chmodSync(bun, 0o755);
  const p = Bun.spawn(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp", bun, `${dir}/listener.ts`, socket, record, JSON.stringify(FORGED)], { stdout: "ignore", stderr: "pipe" });
  for (let i = 0; i < 250 && !accepts(socket); i++) {
    if (p.exitCode !== null) throw new Error(`listener exited: ${await new Response(p.stderr).text()}`);
    await Bun.sleep(20);
  }
  if (!accepts(socket)) throw new Error("listener did not come up");
  return { socket, record, stop: () => p.kill("SIGKILL") };
}

describe("a listener on agentSocket that is neither root nor the plugin's user", () => {
  for (const [label, bin] of [
    ["the plugin (Bun client)", MNCNI_BIN],
    ["the native forwarder", FORWARDER],
  ] as const) {
    test(`${label} ignores it, does the call itself, and sends it nothing`, async () => {
      const l = await forgedListener();
      const node = new TestNode({ bin });
      try {
        const pod = node.pod();
        const r = node.spawn("ADD", node.conf({ extra: { agentSocket: l.socket } }), { pod, id: "forged" });
        const out = await r.done;
        expect(out.code).toBe(0);
        const ips = (out.json?.ips ?? []).map((i: { address: string }) => i.address);
        expect(ips).not.toContain("6.6.6.6/32");
        expect(ips).toHaveLength(2);
        expect(addrs(pod, "eth0").sort()).toEqual([...ips].sort()); // really wired, here
        expect(lastFor(node, "forged", "ADD")?.served).toBeUndefined();
        expect(out.stderr).toContain(`not handing the call to ${l.socket}`);
        expect(existsSync(l.record) ? readFileSync(l.record, "utf8") : "").toBe(""); // no config, no CNI_* sent
      } finally {
        l.stop();
        node.destroy();
      }
    });
  }
});
