// Syntax rules of the spec for identifiers that arrive from the runtime. They are
// untrusted: anything that later becomes a file name must pass these checks first.
import { join, resolve } from "../sys/paths.ts";

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

/** Returns why the value is not a valid container ID, or undefined when it is. */
export function containerIdProblem(id: string): string | undefined {
  if (id === "") return "must not be empty";
  if (!CONTAINER_ID.test(id)) return "must start with an alphanumeric character and contain only alphanumerics, '_', '.' and '-'";
  return undefined;
}

export function ifnameProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (Buffer.byteLength(name) > 15) return "must be shorter than 16 bytes";
  if (name === "." || name === "..") return "must not be '.' or '..'";
  if (/[\/:\s]/.test(name)) return "must not contain '/', ':' or whitespace";
  return undefined;
}

export function networkNameProblem(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (!NETWORK_NAME.test(name)) return "must start with an alphanumeric character and contain only alphanumerics, '_', '.' and '-'";
  return undefined;
}

/**
 * Joins untrusted name parts under a trusted base directory; throws when a part could
 * escape it ('/', '..', NUL), so no runtime-provided value can name a path outside.
 */
export function safeJoin(base: string, ...parts: string[]): string {
  for (const p of parts) {
    if (p === "" || p === "." || p === ".." || p.includes("/") || p.includes("\0")) {
      throw new Error(`cannot use "${p}" as a file name: it could escape ${base}`);
    }
  }
  const full = resolve(join(base, ...parts));
  const root = resolve(base);
  if (full !== root && !full.startsWith(root + "/")) throw new Error(`cannot use path "${full}": outside ${root}`);
  return full;
}
