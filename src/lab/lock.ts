// One lab command at a time per lab: every command that changes a lab holds an exclusive
// flock(2) on <lab dir>/lock while it loads, changes and saves the state. Without it, two
// `lab pod add` in parallel each save their own copy of the state and the last one wins:
// the other pod is created but forgotten, and `down` leaks its namespace.
import { closeSync, fstatSync, mkdirSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { errno, errnoName, LOCK_EX, LOCK_NB, sym } from "../sys/libc.ts";
import { labDir } from "./topology.ts";

const EWOULDBLOCK = 11;

const lockFile = (lab: string) => join(labDir(lab), "lock");

/**
 * Waits for the lab's lock (saying so on stderr once) and returns it; dispose to release.
 * With `create: false`, a lab without a directory has nothing to lock: null.
 */
export function lockLab(lab: string, opts: { create: boolean; wait?: (msg: string) => void }): Disposable | null {
  const path = lockFile(lab);
  const wait = opts.wait ?? ((msg) => process.stderr.write(`${msg}\n`));
  let said = false;
  for (;;) {
    if (opts.create) mkdirSync(labDir(lab), { recursive: true });
    let fd: number;
    try {
      fd = openSync(path, "a", 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT" && !opts.create) return null;
      throw new Error(`cannot lock lab "${lab}": ${(e as Error).message}`);
    }
    if (sym.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const err = errno();
      if (err !== EWOULDBLOCK) {
        closeSync(fd);
        throw new Error(`cannot lock lab "${lab}": flock: ${errnoName(err)}`);
      }
      if (!said) wait(`waiting for lab "${lab}" (another mncni lab command holds its lock)`);
      said = true;
      // Nothing else runs in this process meanwhile: a blocking wait is the simplest.
      if (sym.flock(fd, LOCK_EX) !== 0) {
        const e2 = errno();
        closeSync(fd);
        throw new Error(`cannot lock lab "${lab}": flock: ${errnoName(e2)}`);
      }
    }
    // `down` removes the directory with the lock held: a lock on a file no longer at the path
    // guards nothing, so take the one that is there now (or find the lab gone).
    let current = false;
    try {
      current = statSync(path).ino === fstatSync(fd).ino;
    } catch {
      current = false;
    }
    if (current) return { [Symbol.dispose]: () => closeSync(fd) };
    closeSync(fd);
  }
}
