// sysctls through /proc/sys. The network part of /proc/sys shows the namespace of the
// *calling thread* at open time, so inside withNetns these read and write that namespace.
// The file calls (sys/files.ts) run on the JS thread, which is what makes this safe.
import { readText, writeText } from "../sys/files.ts";
import { NetlinkError } from "./errors.ts";

/** "net.ipv4.ip_forward" or "net/ipv4/conf/eth0/rp_filter" -> its /proc/sys path. */
function sysctlPath(name: string): string {
  // Dotted names cannot express interface names containing dots: use the slash form for those.
  const rel = name.includes("/") ? name.replace(/^\/?(proc\/sys\/)?/, "") : name.replaceAll(".", "/");
  if (rel.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new TypeError(`cannot use sysctl "${name}": not a sysctl name`);
  }
  return `/proc/sys/${rel}`;
}

function fail(verb: string, name: string, e: unknown): never {
  const errno = Math.abs(Number((e as { errno?: unknown }).errno)) || 5; /* EIO */
  throw new NetlinkError(`${verb} sysctl "${name}"`, errno, { cause: e });
}

/** The value with its trailing newline removed. */
export function sysctlGet(name: string): string {
  const path = sysctlPath(name);
  try {
    return readText(path).replace(/\n$/, "");
  } catch (e) {
    fail("read", name, e);
  }
}

/** Writes value unless the sysctl already holds it (writes can be costly, e.g. forwarding). */
export function sysctlSet(name: string, value: string | number): void {
  const want = String(value);
  // Compare on whitespace-normalised text: multi-value sysctls read back tab-separated.
  if (sysctlGet(name).trim().split(/\s+/).join(" ") === want.trim().split(/\s+/).join(" ")) return;
  try {
    writeText(sysctlPath(name), want);
  } catch (e) {
    fail("write", name, e);
  }
}
