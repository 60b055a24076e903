// Leftovers of killed test runs (test/helpers/run-owner.ts): the sweep scripts/test.sh runs first
// removes a namespace whose maker was killed, with the process still inside it, and nothing else:
// not a live run's, not an unmarked one, not one marked in another PID namespace.
import { afterAll, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cleanupNetns, createNetns, deleteNetns, netnsExists, run } from "../helpers/netns.ts";
import { processStart } from "../helpers/run-owner.ts";
import { until } from "../helpers/until.ts";

const dir = mkdtempSync("/tmp/mncni-owned-");
const env = { ...(process.env as Record<string, string>), MNCNI_TEST_OWNED_DIR: dir };
const makers: Subprocess[] = [];
const made: string[] = [];
afterAll(() => {
  for (const p of makers) p.kill("SIGKILL");
  for (const n of made) {
    for (const pid of run(["ip", "netns", "pids", n], { allowFail: true }).stdout.split(/\s+/).filter(Boolean)) process.kill(Number(pid), "SIGKILL");
    deleteNetns(n);
  }
  cleanupNetns();
  rmSync(dir, { recursive: true, force: true });
});

/** A child test run that made a namespace (marked in `dir`) with a process inside; its name. */
async function maker(): Promise<{ proc: Subprocess<"ignore", "pipe", "inherit">; ns: string }> {
  const proc = spawn([process.execPath, resolve(import.meta.dir, "fixtures/make-netns.ts")], { env, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  makers.push(proc);
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the maker exited before making its namespace: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const ns = out.trim();
  made.push(ns);
  return { proc, ns };
}

const sweep = () => run([process.execPath, resolve(import.meta.dir, "../helpers/sweep-dead-runs.ts")], { env });

test("a killed run's namespace (and the process left in it) is swept; a live run's, an unmarked one and one marked in another PID namespace are not", async () => {
  const dead = await maker();
  const live = await maker();
  const inside = Number(run(["ip", "netns", "pids", dead.ns]).stdout.trim().split(/\s+/)[0]);
  expect(processStart(inside)).toBeDefined();
  dead.proc.kill("SIGKILL");
  await dead.proc.exited;
  // Not marked in `dir` (this process marks in the default place): nobody's, for this sweep.
  const unmarked = createNetns("mnsw-un");
  // Marked with a PID that is dead here, but in another PID namespace: its PIDs mean nothing here.
  const foreign = createNetns("mnsw-pn");
  writeFileSync(join(dir, `netns-${foreign}`), JSON.stringify({ kind: "netns", name: foreign, pid: 999_999, start: "1", pidns: "pid:[1]" }));
  const out = sweep().stdout;
  expect(out).toContain(`netns ${dead.ns} (pid ${dead.proc.pid} is gone), 1 processes in it killed: deleted`);
  expect(out.trim().split("\n")).toHaveLength(1);
  expect(netnsExists(dead.ns)).toBe(false);
  await until("the process left inside is gone", () => processStart(inside) === undefined);
  expect(readdirSync(dir).sort()).toEqual([`netns-${foreign}`, `netns-${live.ns}`].sort());
  for (const n of [live.ns, unmarked, foreign]) expect(netnsExists(n)).toBe(true);
  // Once the live one dies too, the next sweep takes it; the foreign mark stays.
  live.proc.kill("SIGKILL");
  await live.proc.exited;
  expect(sweep().stdout).toContain(`netns ${live.ns} (pid ${live.proc.pid} is gone), 1 processes in it killed: deleted`);
  expect(existsSync(`/run/netns/${live.ns}`)).toBe(false);
  expect(readdirSync(dir)).toEqual([`netns-${foreign}`]);
});
