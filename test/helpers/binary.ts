// The executable under test: dist/mncni built by `make build`, or $MNCNI_BIN.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export const MNCNI_BIN = process.env.MNCNI_BIN ?? resolve(import.meta.dir, "../../dist/mncni");

export function requireBinary(): string {
  if (!existsSync(MNCNI_BIN)) throw new Error(`${MNCNI_BIN} missing: run make build first`);
  return MNCNI_BIN;
}

export const REF_CNI_DIR = "/usr/lib/cni";
