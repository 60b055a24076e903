// Shared by the server tests: `mncni serve` started inside a test node namespace (killed
// after each test), a node with a config naming its socket, and the invocation log.
import { readFileSync } from "node:fs";
import { connectUnix } from "../../src/serve/hand-off-client.ts";
import { closeFd } from "../../src/sys/libc.ts";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { requireBinary } from "../helpers/binary.ts";
import { TestNode } from "../plugin/fixture.ts";

const servers = new Set<Subprocess>();

/** For afterEach: kills every server a test started. */
export async function stopServers(): Promise<void> {
  for (const s of servers) {
    s.kill("SIGKILL");
    await s.exited;
  }
  servers.clear();
}

/** True when something accepts connections on the socket (a file alone may be a dead server's). */
export function accepts(socket: string): boolean {
  const c = connectUnix(socket);
  if (!("fd" in c)) return false;
  closeFd(c.fd);
  return true;
}

/** What each server wrote to stderr so far. */
const stderrOf = new Map<Subprocess, { text: string }>();

/** Starts `mncni serve` inside a namespace and waits until its socket accepts connections. */
export async function startServer(bin: string, ns: string, socket: string): Promise<Subprocess> {
  const p = Bun.spawn(["ip", "netns", "exec", ns, bin, "serve", "--socket", socket], { stdout: "ignore", stderr: "pipe" });
  servers.add(p);
  const log = { text: "" };
  stderrOf.set(p, log);
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of p.stderr as ReadableStream<Uint8Array>) log.text += decoder.decode(chunk);
  })();
  for (let i = 0; i < 250; i++) {
    if (accepts(socket)) return p;
    if (p.exitCode !== null) break;
    await Bun.sleep(20);
  }
  throw new Error(`mncni serve did not come up on ${socket}: ${log.text}`);
}

/** Polls cond every 10 ms until it holds; fails (naming what) after 10 s. */
export async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Waits until the server has written text to its stderr. */
export function untilLogged(server: Subprocess, text: string): Promise<void> {
  return until(`the server logs "${text}"`, () => (stderrOf.get(server)?.text ?? "").includes(text));
}

/** Connections the server process holds open (plugins whose call it has taken), from `ss`. */
export function connectionsOf(ns: string, server: Subprocess): number {
  const out = Bun.spawnSync(["ip", "netns", "exec", ns, "ss", "-xHp", "state", "established"]).stdout.toString();
  return out.split("\n").filter((l) => l.includes(`pid=${server.pid},`)).length;
}

/** Waits until n plugin processes are connected to the server (their calls handed over). */
export function untilConnected(ns: string, server: Subprocess, n = 1): Promise<void> {
  return until(`${n} call(s) reach the server (pid ${server.pid})`, () => connectionsOf(ns, server) >= n);
}

/**
 * A node with `mncni serve` running in it, and a config that names its socket. plugin: the
 * executable the runtime runs (default: the compiled mncni; the server is always that one).
 */
export async function servedNode(o: { plugin?: string } = {}) {
  const node = new TestNode({ bin: o.plugin });
  const socket = `${node.dir}/cni.sock`;
  const server = await startServer(resolve(requireBinary()), node.ns, socket);
  return { node, socket, server, conf: node.conf({ extra: { agentSocket: socket } }) };
}

export interface LogLine {
  command: string;
  containerId?: string;
  outcome: string;
  code?: number;
  served?: { queueMs: number; client?: Record<string, number> };
  phases?: Record<string, number>;
}

export function logLines(node: TestNode): LogLine[] {
  return readFileSync(node.logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

export const lastFor = (node: TestNode, id: string, command: string) => logLines(node).filter((l) => l.containerId === id && l.command === command).pop();

