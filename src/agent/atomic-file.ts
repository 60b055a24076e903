// Files written the way readers expect: a temporary dotfile in the same directory, renamed
// into place, so a runtime scanning the directory never sees half a config or binary.
import { chmodSync, copyFileSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const tmpName = (path: string) => join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);

function replaceWith(path: string, fill: (tmp: string) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  try {
    fill(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function readOrUndefined(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Writes content unless the file already holds exactly it; true when it wrote. */
export function writeFileIfChanged(path: string, content: string, mode = 0o644): boolean {
  const old = readOrUndefined(path);
  if (old !== undefined && old.equals(Buffer.from(content))) return false;
  replaceWith(path, (tmp) => writeFileSync(tmp, content, { mode }));
  return true;
}

/** Copies src to dst (executable) unless dst already has identical bytes; true when it wrote. */
export function copyFileIfChanged(src: string, dst: string): boolean {
  let same = false;
  try {
    const [a, b] = [statSync(src), statSync(dst)];
    same = (a.ino === b.ino && a.dev === b.dev) || (a.size === b.size && readFileSync(src).equals(readFileSync(dst)));
  } catch {
    same = false;
  }
  if (same) return false;
  replaceWith(dst, (tmp) => {
    // A hard link when src is on the same filesystem: no 100 MB copy per node (the lab
    // runs many nodes on one disk); a copy otherwise, as in a container image.
    try {
      linkSync(src, tmp);
    } catch {
      copyFileSync(src, tmp);
      chmodSync(tmp, 0o755);
    }
  });
  return true;
}

/**
 * Identifies one version of a file cheaply (inode, size, mtime): a replaced or rewritten file
 * gets a new key. undefined when the file is missing.
 */
export function fileVersionKey(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}
