// What a running agent installs where, recorded in a small file so that `--uninstall` finds
// the conflist, binaries and bridge of that run without being given the same flags again.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeFileIfChanged } from "./atomic-file.ts";
import type { Mode } from "../plugin/netconf.ts";

const RUN_RECORD_NAME = "agent-run.json";

/**
 * Beside the CNI socket by default (/run/mncni/agent-run.json): a directory the agent owns
 * and that every agent on a shared filesystem (the lab's node namespaces) has its own of.
 * It lives in /run, so a reboot forgets it; the agent writes it again when it starts.
 */
export function defaultStateFile(cniSocket: string): string {
  return join(cniSocket === "off" ? "/run/mncni" : dirname(cniSocket), RUN_RECORD_NAME);
}

/** The file's wire format (version 1). */
export interface RunRecord {
  version: 1;
  cniConfDir: string;
  cniBinDir: string;
  mode: Mode;
  /** The bridge the conflist names (bridge mode only). */
  bridge?: string;
}

/** What the record is made of (fields of the agent's config). */
export interface RunRecordSource {
  cniConfDir: string;
  cniBinDir: string;
  mode: Mode;
  bridge: string;
}

function runRecordOf(cfg: RunRecordSource): RunRecord {
  return { version: 1, cniConfDir: cfg.cniConfDir, cniBinDir: cfg.cniBinDir, mode: cfg.mode, ...(cfg.mode === "bridge" ? { bridge: cfg.bridge } : {}) };
}

/** Writes the record unless it already says the same; true when it wrote. */
export function writeRunRecord(path: string, cfg: RunRecordSource): boolean {
  return writeFileIfChanged(path, JSON.stringify(runRecordOf(cfg), null, 2) + "\n");
}

/** The record, undefined when there is none; throws when the file is there but unreadable. */
export function readRunRecord(path: string): RunRecord | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read run record "${path}": ${(e as Error).message}`);
  }
  let r: Partial<RunRecord>;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new Error(`cannot read run record "${path}": ${(e as Error).message}`);
  }
  if (r.version !== 1 || typeof r.cniConfDir !== "string" || typeof r.cniBinDir !== "string" || (r.bridge !== undefined && typeof r.bridge !== "string")) {
    throw new Error(`cannot read run record "${path}": not a version 1 record with cniConfDir and cniBinDir`);
  }
  return r as RunRecord;
}
