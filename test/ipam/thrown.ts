// The CniError a call throws (the test fails if it throws nothing, or something else).
import { expect } from "bun:test";
import { CniError } from "../../src/cni/errors.ts";

export function thrown(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return e as CniError;
  }
  throw new Error("expected a CniError");
}
