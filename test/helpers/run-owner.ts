// What killed test runs leave behind. A test process that is killed (SIGKILL, a CI timeout, a
// developer's ^C twice) runs no afterAll: its namespaces and labs stay, and `ip netns` fills
// with mnp-*, mna-*, mnl-* of nobody. Each one a test makes through the helpers is marked here
// with its maker: PID, the process's start time (a PID is reused; PID and start time are not)
// and its PID namespace. sweepDeadRuns() removes what the marks of dead makers name, and only
// that: a namespace without a mark (another engineer's, a lab started by hand), or whose maker
// is alive, or was made in another PID namespace (whose PIDs mean nothing here), is never touched.
import { spawnSync } from "bun";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type OwnedKind = "netns" | "lab";

export interface OwnerMark {
  kind: OwnedKind;
  name: string;
  pid: number;
  /** Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot. */
  start: string;
  /** readlink /proc/self/ns/pid of the maker. */
  pidns: string;
  /** A lab's MNCNI_LAB_ROOT, when it was not the default. */
  labRoot?: string;
}

/** Where the marks are: on /run (tmpfs), so a reboot clears them with the namespaces they name. */
export const OWNED_DIR = process.env.MNCNI_TEST_OWNED_DIR ?? "/run/mncni-test/owned";

const markPath = (kind: OwnedKind, name: string) => join(OWNED_DIR, `${kind}-${name}`);

/** A process's start time, or undefined when it is gone (or a zombie: it runs nothing any more). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After the command: state is field 3, starttime field 22.
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

const ownPidns = (): string => readlinkSync("/proc/self/ns/pid");

let me: { pid: number; start: string; pidns: string } | undefined;

/** Marks `name` as made by this process. Never fails a test: a mark that cannot be written costs only a later sweep. */
export function markOwned(kind: OwnedKind, name: string, extra: { labRoot?: string } = {}): void {
  try {
    me ??= { pid: process.pid, start: processStart(process.pid)!, pidns: ownPidns() };
    mkdirSync(OWNED_DIR, { recursive: true });
    const mark: OwnerMark = { kind, name, ...me, ...(extra.labRoot ? { labRoot: extra.labRoot } : {}) };
    writeFileSync(markPath(kind, name), JSON.stringify(mark));
  } catch {}
}

export function unmarkOwned(kind: OwnedKind, name: string): void {
  rmSync(markPath(kind, name), { force: true });
}

function readMarks(): OwnerMark[] {
  if (!existsSync(OWNED_DIR)) return [];
  const out: OwnerMark[] = [];
  for (const f of readdirSync(OWNED_DIR)) {
    try {
      out.push(JSON.parse(readFileSync(join(OWNED_DIR, f), "utf8")) as OwnerMark);
    } catch {}
  }
  return out;
}

/** Whether the mark's maker is known dead: same PID namespace as ours, and its PID not running with that start time. */
export function makerDead(m: OwnerMark): boolean {
  return m.pidns === ownPidns() && processStart(m.pid) !== m.start;
}

const sh = (argv: string[], env?: Record<string, string>) => spawnSync(argv, { stdout: "pipe", stderr: "pipe", ...(env ? { env } : {}) });

/** The PIDs of processes inside a namespace (`ip netns pids`): a dead run's servers and agents. */
function pidsIn(netns: string): number[] {
  return sh(["ip", "netns", "pids", netns]).stdout.toString().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Removes what dead makers left: a lab with `mncni lab down` (its processes, namespaces and
 * directory), a namespace with the processes still inside it. Returns one line per thing removed.
 * `labCmd`: how to run mncni (the built binary).
 */
export function sweepDeadRuns(labCmd: string[]): string[] {
  const done: string[] = [];
  const marks = readMarks().filter(makerDead);
  // Labs first: `lab down` takes their namespaces with them.
  for (const m of marks.filter((x) => x.kind === "lab")) {
    const root = m.labRoot ?? "/run/mncni-lab";
    const nets = existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith(`${m.name}-`)) : [];
    if (existsSync(join(root, m.name)) || nets.length) {
      const env = { ...(process.env as Record<string, string>), MNCNI_LAB_ROOT: root };
      const r = sh([...labCmd, "lab", "down", "--name", m.name, "-q"], env);
      done.push(`lab ${m.name} (pid ${m.pid} is gone): ${r.exitCode === 0 ? "down" : `lab down failed: ${r.stderr.toString().trim().slice(0, 200)}`}`);
      if (r.exitCode !== 0) continue;
    }
    unmarkOwned("lab", m.name);
  }
  for (const m of marks.filter((x) => x.kind === "netns")) {
    if (existsSync(`/run/netns/${m.name}`)) {
      const pids = pidsIn(m.name);
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      const r = sh(["ip", "netns", "del", m.name]);
      done.push(`netns ${m.name} (pid ${m.pid} is gone)${pids.length ? `, ${pids.length} processes in it killed` : ""}: ${r.exitCode === 0 ? "deleted" : `not deleted: ${r.stderr.toString().trim()}`}`);
      if (r.exitCode !== 0) continue;
    }
    unmarkOwned("netns", m.name);
  }
  return done;
}
