// install-cni: the agent's own executable is the plugin, copied into the CNI bin dir under
// its names (main.ts picks the IPAM role from the name it is invoked as). When the native
// forwarder (src/forward/forward.c) was built next to it, that becomes `mncni` and the
// executable `mncni-core`, which the forwarder runs whenever it does not hand a call over.
import { isCompiled } from "../sys/self.ts";
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { copyFileIfChanged, fileVersionKey } from "./atomic-file.ts";

export const PLUGIN_NAMES = ["mncni", "mncni-ipam", "mncni-core"] as const;
/** The forwarder's file name next to the executable (make build: dist/mncni-forward). */
const FORWARDER_NAME = "mncni-forward";

/**
 * Which file goes under which name in the CNI bin dir. The forwarder is found beside the
 * executable: as built (dist/mncni-forward), or as installed (the executable is mncni-core
 * and mncni beside it is the forwarder, e.g. an agent run from a bin dir it installed).
 */
export function installPlan(executable: string): Record<string, string> {
  const dir = dirname(executable);
  const candidates = [join(dir, FORWARDER_NAME), ...(basename(executable) === "mncni-core" ? [join(dir, "mncni")] : [])];
  const forwarder = candidates.find((f) => existsSync(f));
  return forwarder
    ? { mncni: forwarder, "mncni-core": executable, "mncni-ipam": executable }
    : { mncni: executable, "mncni-ipam": executable };
}

/** The executable to install: --binary, or this process when it is a compiled mncni. */
export function selfExecutable(explicit?: string): string | undefined {
  if (explicit) return explicit;
  // In a `bun build --compile` executable the entry point lives in the embedded /$bunfs/.
  return isCompiled() ? process.execPath : undefined;
}

const statKey = (path: string) => fileVersionKey(path) ?? "missing";

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
    // One file under two names (mncni-core, mncni-ipam): the second is linked to the first
    // one's installed copy, so an agent installing from its image to the host copies ~110 MB
    // once, not twice.
    const installed = new Map<string, string>();
    for (const [name, planned] of Object.entries(installPlan(this.src))) {
      const dst = join(this.binDir, name);
      const src = installed.get(planned) ?? planned;
      installed.set(planned, dst);
      const srcKey = statKey(src);
      const key = `${srcKey}|${statKey(dst)}`;
      if (this.verified.get(dst) === key) continue;
      if (copyFileIfChanged(src, dst)) wrote.push(dst);
      this.verified.set(dst, `${srcKey}|${statKey(dst)}`);
    }
    return wrote;
  }
}
