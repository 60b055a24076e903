// What the running kernel was built with, read from its own config (/proc/config.gz, or
// /boot/config-<release>): an answer independent of the code under test, for tests that
// depend on a kernel feature and must say so when they skip.
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";

let config: string | undefined;

function kernelConfig(): string {
  if (config !== undefined) return config;
  if (existsSync("/proc/config.gz")) config = gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
  else if (existsSync(`/boot/config-${release()}`)) config = readFileSync(`/boot/config-${release()}`, "utf8");
  else throw new Error("the kernel's config is unreadable (no /proc/config.gz, no /boot/config-<release>): cannot tell which features it has");
  return config;
}

/** Whether the kernel has CONFIG_<name> built in or as a module. */
export function kernelHas(name: string): boolean {
  return new RegExp(`^CONFIG_${name}=[ym]$`, "m").test(kernelConfig());
}
