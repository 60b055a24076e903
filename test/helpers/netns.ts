// Throwaway network namespaces for tests. Names are unique per process and per call so
// parallel test files (and parallel developers) never collide; every namespace made here
// is removed by cleanup(), which tests call from afterAll/afterEach even on failure.
import { spawnSync } from "bun";
import { existsSync } from "node:fs";
import { markOwned, unmarkOwned } from "./run-owner.ts";

let counter = 0;
const created = new Set<string>();

/** A unique name, at most 15 chars so it can double as an interface name prefix. */
export function uniqueName(prefix: string): string {
  const id = `${process.pid.toString(36)}${(counter++).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  return `${prefix.slice(0, 15 - id.length - 1)}-${id}`.slice(0, 15);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(argv: string[], opts: { stdin?: string; env?: Record<string, string>; allowFail?: boolean } = {}): RunResult {
  const p = spawnSync(argv, {
    stdin: opts.stdin === undefined ? "ignore" : Buffer.from(opts.stdin),
    env: opts.env ?? (process.env as Record<string, string>),
    stdout: "pipe",
    stderr: "pipe",
  });
  const res = { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  if (res.code !== 0 && !opts.allowFail) {
    throw new Error(`command failed (${res.code}): ${argv.join(" ")}\n${res.stderr}${res.stdout}`);
  }
  return res;
}

export function createNetns(prefix = "mnt"): string {
  const name = uniqueName(prefix);
  // Marked before it exists: a run killed in between leaves a mark of nothing, never a namespace without one.
  markOwned("netns", name);
  run(["ip", "netns", "add", name]);
  created.add(name);
  run(["ip", "-n", name, "link", "set", "lo", "up"]);
  return name;
}

export function deleteNetns(name: string): void {
  run(["ip", "netns", "del", name], { allowFail: true });
  created.delete(name);
  if (!netnsExists(name)) unmarkOwned("netns", name);
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/** Runs a command inside a namespace (ip netns exec semantics). */
export function inNetns(ns: string, argv: string[], opts: Parameters<typeof run>[1] = {}): RunResult {
  return run(["ip", "netns", "exec", ns, ...argv], opts);
}

/** `ip -j` output parsed, for an independent view of kernel state. */
export function ipJson<T = any>(ns: string, args: string[]): T {
  const out = run(["ip", "-n", ns, "-j", ...args]).stdout.trim();
  return (out ? JSON.parse(out) : []) as T;
}

/** Removes every namespace this process created (and any passed explicitly). */
export function cleanupNetns(extra: string[] = []): void {
  for (const n of [...created, ...extra]) deleteNetns(n);
}
