// Small helpers shared by the protocol tests: temp directories removed in afterAll, catching
// the CniError a call throws, and stdin bytes from a config object.
import { expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { CniError } from "../../src/cni/errors.ts";

const made: string[] = [];

export function tempDir(tag = "proto"): string {
  const dir = mkdtempSync(`/tmp/mncni-${tag}-test-${process.pid}-`);
  made.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The CniError `fn` throws (fails the test when it returns or throws something else). */
export function cniErrorOf(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error("expected a CniError, but the call succeeded");
}

export async function cniErrorOfAsync(fn: () => Promise<unknown>): Promise<CniError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error("expected a CniError, but the call succeeded");
}

export const bytes = (v: object | string): Uint8Array => Buffer.from(typeof v === "string" ? v : JSON.stringify(v));
