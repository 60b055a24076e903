// Unique temp data directories under /tmp, removed by cleanupDataDirs() in afterAll.
import { mkdtempSync, rmSync } from "node:fs";

const made: string[] = [];

export function tempDataDir(): string {
  const dir = mkdtempSync(`/tmp/mncni-ipam-test-${process.pid}-`);
  made.push(dir);
  return dir;
}

export function cleanupDataDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}
