// An exclusive flock on a file (as mncni-ipam takes its network's lock), held by a child
// process until the test releases it: a call that needs the lock is then in progress for
// exactly as long as the test wants, however late a loaded machine runs the test. (Holders
// that slept a fixed time let the lock go before the test acted: flaky under load.)
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface LockHolder {
  /** Lets the lock go and waits until the holder is gone. */
  release(): Promise<void>;
}

/** Takes the lock (resolves once it is held). */
export async function holdLock(file: string): Promise<LockHolder> {
  mkdirSync(dirname(file), { recursive: true });
  const p = Bun.spawn(["flock", file, "sh", "-c", "echo held; read _"], { stdin: "pipe", stdout: "pipe" });
  const reader = p.stdout.getReader();
  await reader.read(); // "held": the lock is taken
  reader.releaseLock();
  let released: Promise<void> | undefined;
  return {
    release: () => {
      released ??= (async () => {
        p.stdin.end();
        await p.exited;
      })();
      return released;
    },
  };
}
