// POSIX path joining for the CNI call's path (sys/files.ts says why not node:path: its first
// use costs ~0.4 ms of a plugin process's start). Same results as node:path/posix for the
// functions here (test/sys/paths.test.ts compares them).

/** A "." or ".." part, an empty part ("//"), or a trailing slash. */
const ABNORMAL = /(^|\/)\.\.?(\/|$)|\/\/|.\/$/;

/** Resolves "." and "..", squeezes repeated slashes, drops a trailing one. */
export function normalize(path: string): string {
  // Most paths are normal already (every reservation file of a listing goes through here).
  if (path !== "" && !ABNORMAL.test(path)) return path;
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(part);
  }
  const joined = out.join("/");
  return absolute ? `/${joined}` : joined || ".";
}

export function join(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== "");
  return nonEmpty.length === 0 ? "." : normalize(nonEmpty.join("/"));
}

/** An absolute path: the parts from the last absolute one, against the working directory. */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    if (parts[i] !== "") path = path === "" ? parts[i]! : `${parts[i]}/${path}`;
  }
  return normalize(path.startsWith("/") ? path : `${process.cwd()}/${path}`);
}

export function dirname(path: string): string {
  if (path === "") return ".";
  const trimmed = path.replace(/(.)\/+$/, "$1");
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return trimmed.slice(0, i);
}
