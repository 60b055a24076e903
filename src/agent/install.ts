// install-cni: the agent's own executable is the plugin, copied into the CNI bin dir under
// both names (main.ts picks the IPAM role from the name it is invoked as).
import { isCompiled } from "../sys/self.ts";
import { statSync } from "node:fs";
import { join } from "node:path";
import { copyFileIfChanged } from "./atomic-file.ts";

export const PLUGIN_NAMES = ["mncni", "mncni-ipam"] as const;

/** The executable to install: --binary, or this process when it is a compiled mncni. */
export function selfExecutable(explicit?: string): string | undefined {
  if (explicit) return explicit;
  // In a `bun build --compile` executable the entry point lives in the embedded /$bunfs/.
  return isCompiled() ? process.execPath : undefined;
}

const statKey = (path: string) => {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
};

/**
 * Installs src into binDir. Comparing 100 MB executables byte by byte on every resync would
 * be wasteful: after one full comparison the installer only re-checks when a file's stat changes.
 */
export class BinaryInstaller {
  private verified = new Map<string, string>();

  constructor(private readonly src: string, private readonly binDir: string) {}

  /** Returns the paths it (re)wrote. */
  ensure(): string[] {
    const wrote: string[] = [];
    const srcKey = statKey(this.src);
    for (const name of PLUGIN_NAMES) {
      const dst = join(this.binDir, name);
      const key = `${srcKey}|${statKey(dst)}`;
      if (this.verified.get(dst) === key) continue;
      if (copyFileIfChanged(this.src, dst)) wrote.push(dst);
      this.verified.set(dst, `${srcKey}|${statKey(dst)}`);
    }
    return wrote;
  }
}
