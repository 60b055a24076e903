// Helpers for tests that run allocators as separate processes (ours and host-local).
import { readdirSync, readFileSync } from "node:fs";
import { REF_CNI_DIR } from "../helpers/binary.ts";
import { parseIp, formatIp } from "../../src/ipam/ip-bigint.ts";

export const BUN = process.execPath;
export const ALLOCATE = `${import.meta.dir}/fixtures/allocate.ts`;

export function spawnAllocator(ipam: object, network: string, prefix: string, count: number) {
  return Bun.spawn([BUN, ALLOCATE, JSON.stringify(ipam), network, prefix, String(count)], { stdout: "pipe", stderr: "pipe" });
}

export interface HostLocalCall {
  command: "ADD" | "DEL" | "CHECK";
  containerId: string;
  conf: object;
}

/** Runs the Go reference host-local; it needs CNI_NETNS set but never opens it. */
export function hostLocal(c: HostLocalCall) {
  return Bun.spawn([`${REF_CNI_DIR}/host-local`], {
    env: { CNI_COMMAND: c.command, CNI_CONTAINERID: c.containerId, CNI_NETNS: "/dev/null", CNI_IFNAME: "eth0", CNI_PATH: REF_CNI_DIR },
    stdin: Buffer.from(JSON.stringify(c.conf)),
    stdout: "pipe",
    stderr: "pipe",
  });
}

export async function finish(p: ReturnType<typeof Bun.spawn>): Promise<{ code: number; stdout: string; stderr: string }> {
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout as ReadableStream).text(),
    new Response(p.stderr as ReadableStream).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

/** Every reservation file of a network directory: address name -> content. */
export function reservationFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    const ip = parseIp(name);
    if (ip && formatIp(ip) === name) out.set(name, readFileSync(`${dir}/${name}`, "utf8"));
  }
  return out;
}
