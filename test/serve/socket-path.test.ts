// What `mncni serve --socket PATH` (and the agent's --cni-socket, the same code) does with
// what it finds at PATH: a file or directory is refused untouched, a live server's socket
// is refused, a dead server's socket is replaced; on stop a server removes the socket only
// if it is still its own. Checked with the compiled binary and the files themselves.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { addrs, destroyAllNodes, TestNode } from "../plugin/fixture.ts";
import { lastFor, startServer, stopServers } from "./serve-fixture.ts";

afterEach(stopServers);
afterAll(destroyAllNodes);

/** Runs `mncni serve` expecting it to refuse; returns its exit code and stderr. */
async function refused(node: TestNode, socket: string): Promise<{ code: number; stderr: string }> {
  const p = Bun.spawn(["ip", "netns", "exec", node.ns, node.bin, "serve", "--socket", socket], { stdout: "ignore", stderr: "pipe" });
  // A server that did not refuse would run until killed: bound the wait, then fail visibly.
  const timer = setTimeout(() => p.kill("SIGKILL"), 10_000);
  const [code, stderr] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  clearTimeout(timer);
  return { code, stderr };
}

/** An ADD through the socket; true when the server ran it (the log says so). */
function servedAdd(node: TestNode, socket: string, id: string): boolean {
  const pod = node.pod();
  node.add(node.conf({ extra: { agentSocket: socket } }), { pod, id });
  expect(addrs(pod, "eth0")).toHaveLength(2);
  return lastFor(node, id, "ADD")?.served !== undefined;
}

describe("mncni serve --socket PATH", () => {
  test("a regular file or a directory at PATH is refused and left as it was", async () => {
    const node = new TestNode();
    const file = `${node.dir}/file.sock`;
    writeFileSync(file, "precious\n");
    const dir = `${node.dir}/dir.sock`;
    mkdirSync(dir);
    writeFileSync(`${dir}/inside`, "kept\n");
    for (const [path, kind] of [
      [file, "a regular file"],
      [dir, "a directory"],
    ] as const) {
      const r = await refused(node, path);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on socket "${path}": it is ${kind}`);
      expect(r.stderr).not.toContain("    at "); // a message, not a stack trace
    }
    expect(readFileSync(file, "utf8")).toBe("precious\n");
    expect(readFileSync(`${dir}/inside`, "utf8")).toBe("kept\n");
    node.destroy();
  });

  test("a live server's socket is refused: server A keeps serving after B gave up", async () => {
    const node = new TestNode();
    const socket = `${node.dir}/cni.sock`;
    await startServer(node.bin, node.ns, socket);
    const inode = statSync(socket).ino;
    const r = await refused(node, socket);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("another server answers on it");
    expect(statSync(socket).ino).toBe(inode);
    expect(servedAdd(node, socket, "stillA")).toBe(true);
    node.destroy();
  });

  test("a dead server's socket is replaced; a server stopping after its socket was replaced leaves the new one", async () => {
    const node = new TestNode();
    const socket = `${node.dir}/cni.sock`;
    // A server killed with SIGKILL leaves its socket file behind: B takes the path over.
    const dead = await startServer(node.bin, node.ns, socket);
    dead.kill("SIGKILL");
    await dead.exited;
    expect(existsSync(socket)).toBe(true);
    const b = await startServer(node.bin, node.ns, socket);
    expect(servedAdd(node, socket, "byB")).toBe(true);

    // A's socket file removed (by an admin, an installer) while A runs: C listens on the
    // path; A then stops and must not remove C's socket.
    const a = b;
    Bun.spawnSync(["rm", socket]);
    const c = await startServer(node.bin, node.ns, socket);
    const cInode = statSync(socket).ino;
    a.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    expect(existsSync(socket)).toBe(true);
    expect(statSync(socket).ino).toBe(cInode);
    expect(servedAdd(node, socket, "byC")).toBe(true);
    c.kill("SIGTERM");
    expect(await c.exited).toBe(0);
    expect(existsSync(socket)).toBe(false); // its own socket: removed
    node.destroy();
  });
});
