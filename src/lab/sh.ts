// Running the tools the lab drives (ip, nft, sh) and the processes it leaves running.
// The lab is not on the CNI plugin path, so plain subprocesses are fine here.
import { spawn as spawnChild } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(argv: string[], opts: { stdin?: string; allowFail?: boolean } = {}): RunResult {
  const p = Bun.spawnSync(argv, {
    stdin: opts.stdin === undefined ? "ignore" : Buffer.from(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const res = { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  if (res.code !== 0 && !opts.allowFail) {
    throw new Error(`cannot run "${argv.join(" ")}": ${(res.stderr || res.stdout).trim() || `exit status ${res.code}`}`);
  }
  return res;
}

export async function runAsync(argv: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: opts.timeoutMs });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** `ip -n NS -batch -`: many changes to one namespace in one process. */
export function ipBatch(netns: string, lines: string[]): void {
  run(["ip", "-n", netns, "-batch", "-"], { stdin: lines.join("\n") + "\n" });
}

export function ipJson<T = unknown>(netns: string, args: string[]): T {
  const out = run(["ip", "-n", netns, "-j", ...args]).stdout.trim();
  return (out ? JSON.parse(out) : []) as T;
}

/** argv that runs `argv` inside a named namespace in a child process (the kernel layer's withNetns switches this thread instead). */
export function netnsExecArgv(netns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", netns, ...argv];
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Names of the namespaces `ip netns` knows (/run/netns). */
export function listNetns(): string[] {
  try {
    return readdirSync("/run/netns");
  } catch {
    return [];
  }
}

/** PIDs whose command line contains `text` (processes the lab started, found by a path or marker of the lab). */
export function pidsMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .map(Number)
    .filter((pid) => cmdline(pid).includes(text));
}

/** Starts a long-running process that outlives the lab command; returns its PID. */
export function spawnDetached(argv: string[], logFile: string): number {
  const fd = openSync(logFile, "a");
  try {
    const child = spawnChild(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] });
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot start "${argv.join(" ")}"`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/**
 * Ends a process the lab started: only if its command line still carries `marker` (a PID may
 * have been reused since), SIGTERM then SIGKILL after graceMs.
 */
export async function stopProcess(pid: number, marker: string, graceMs = 2000): Promise<void> {
  if (!pidAlive(pid) || !cmdline(pid).includes(marker)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await Bun.sleep(20);
  if (pidAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** PIDs of processes inside a namespace (all of them were started by the lab). */
export function netnsPids(netns: string): number[] {
  const r = run(["ip", "netns", "pids", netns], { allowFail: true });
  return r.code === 0 ? r.stdout.split(/\s+/).filter(Boolean).map(Number) : [];
}

export async function waitFor<T>(what: string, fn: () => T | null | undefined | false, timeoutMs: number, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`cannot wait for ${what}: timed out after ${timeoutMs} ms`);
    await Bun.sleep(stepMs);
  }
}

/** Runs fn over items with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
