// Which cniVersion the conflist can use: the highest version every plugin of the chain
// supports, up to DEFAULT_CONFLIST_VERSION, found by asking each installed plugin as a runtime
// would (CNI_COMMAND=VERSION, `{"cniVersion": ...}` on stdin). A runtime rejects the whole list
// when one plugin does not support its version, e.g. Debian 12's reference plugins (1.1.1) stop
// at 1.0.0. The runtime is part of the chain too, but cannot be asked: hence the ceiling.
import { spawnSync } from "bun";
import { join } from "node:path";
import { SUPPORTED_VERSIONS } from "../cni/types.ts";
import { compareVersions } from "../cni/version.ts";
import { fileVersionKey } from "./atomic-file.ts";

/** The version VERSION is asked in: every spec version accepts the question. */
const ASK_VERSION = "0.4.0";
const ASK_TIMEOUT_MS = 5000;

/** The supportedVersions a plugin executable reports. Throws when it does not answer as the spec says. */
function askPluginVersions(path: string): string[] {
  const p = spawnSync([path], {
    env: { CNI_COMMAND: "VERSION", PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" },
    stdin: Buffer.from(JSON.stringify({ cniVersion: ASK_VERSION })),
    stdout: "pipe",
    stderr: "pipe",
    timeout: ASK_TIMEOUT_MS,
  });
  const out = p.stdout.toString().trim();
  if (p.exitCode !== 0) throw new Error(`cannot ask plugin "${path}" for its CNI versions: exit ${p.exitCode ?? p.signalCode}: ${(out || p.stderr.toString()).trim().slice(0, 200)}`);
  let info: { supportedVersions?: unknown };
  try {
    info = JSON.parse(out);
  } catch {
    throw new Error(`cannot ask plugin "${path}" for its CNI versions: answer is not JSON: ${JSON.stringify(out.slice(0, 100))}`);
  }
  const v = info.supportedVersions;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new Error(`cannot ask plugin "${path}" for its CNI versions: no supportedVersions list`);
  return v;
}

/** The versions mncni can write a conflist in: network lists (and prevResult) begin with 0.3.0. */
export const CONFLIST_VERSIONS: readonly string[] = SUPPORTED_VERSIONS.filter((v) => compareVersions(v, "0.3.0") >= 0);

/**
 * The version the agent writes unless --cni-version pins one. The runtime's libcni must accept
 * it as well, and it has no VERSION to ask: containerd 1.6/1.7 (libcni 1.1) stop at 1.0.0 and
 * fail every sandbox with `unsupported CNI result version "1.1.0"` (issue #29). 1.0.0 is what
 * Calico and Cilium ship; runtimes known to take 1.1.0 (containerd >= 2.0, CRI-O >= 1.30) get
 * it with --cni-version 1.1.0 (docs/install.md).
 */
export const DEFAULT_CONFLIST_VERSION = "1.0.0";

/** The highest version in every list, not above `ceiling` (and usable for a conflist), or undefined when there is none. */
export function highestCommonVersion(lists: readonly (readonly string[])[], ceiling = DEFAULT_CONFLIST_VERSION): string | undefined {
  const common = CONFLIST_VERSIONS.filter((v) => compareVersions(v, ceiling) <= 0 && lists.every((l) => l.includes(v)));
  return common.sort(compareVersions).at(-1);
}

/** The plugin executables a conflist makes the runtime (or mncni, for a delegated IPAM) run. */
export function chainPluginTypes(plugins: readonly Record<string, unknown>[]): string[] {
  const types = plugins.flatMap((p) => [p.type, (p.ipam as { type?: unknown } | undefined)?.type]);
  // mncni-ipam runs inside mncni, never as its own process.
  return [...new Set(types.filter((t): t is string => typeof t === "string" && t !== "mncni-ipam"))];
}

export type VersionChoice = { version: string } | { problem: string };

/**
 * Picks the conflist's version for a chain of plugins in binDir. Answers are cached per file
 * (inode, size, mtime), so a resync execs nothing unless a plugin was replaced.
 */
export class ChainVersionPicker {
  private readonly cache = new Map<string, { key: string; versions: string[] }>();

  constructor(
    private readonly binDir: string,
    /** Plugin types this agent is: when not installed yet (running from source), their versions are this build's. */
    private readonly own: readonly string[] = ["mncni"],
    private readonly ask: (path: string) => string[] = askPluginVersions,
  ) {}

  pick(types: readonly string[]): VersionChoice {
    const lists: string[][] = [];
    for (const type of types) {
      const path = join(this.binDir, type);
      const key = fileVersionKey(path);
      if (key === undefined) {
        if (this.own.includes(type)) {
          lists.push([...SUPPORTED_VERSIONS]);
          continue;
        }
        return { problem: `cannot find plugin "${type}" in ${this.binDir}: the conflist chains it (install it, or drop it from the chain)` };
      }
      let hit = this.cache.get(path);
      if (hit?.key !== key) {
        try {
          hit = { key, versions: this.ask(path) };
        } catch (e) {
          return { problem: (e as Error).message };
        }
        this.cache.set(path, hit);
      }
      lists.push(hit.versions);
    }
    const version = highestCommonVersion(lists);
    if (!version) return { problem: `cannot pick a cniVersion for plugins ${types.join(", ")}: no version is supported by all of them` };
    return { version };
  }
}
