// Where this program's own executable is, for running itself again (lab probes, the
// agent's install step). Bun.main, not import.meta.path: with --bytecode the latter keeps
// the source path even inside a compiled executable.
import { resolve } from "node:path";

/** A `bun build --compile` executable carries its entry point in Bun's virtual filesystem. */
export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
}

/** argv that runs this CLI again: the executable, or bun + src/main.ts from source. */
export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, resolve(import.meta.dir, "../main.ts")];
}
