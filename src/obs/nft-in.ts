// Running nft inside a namespace (the trace tables of `explain --probe`, rule text by handle).
// Not on any CNI call's path: the insight commands are run by a person.
import { basename } from "node:path";
import { runNft, type NftRun } from "../sys/nft.ts";

export function nftIn(netns: string | undefined, args: string[], stdin?: string): NftRun {
  if (netns === undefined) return runNft(args, stdin);
  const p = Bun.spawnSync(["ip", "netns", "exec", basename(netns), "nft", ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

/** The text of rule `handle` in a chain (as `nft -a list chain` prints it), without its handle. */
export function ruleText(netns: string | undefined, family: string, table: string, chain: string, handle: bigint): string | undefined {
  const r = nftIn(netns, ["-a", "list", "chain", family, table, chain]);
  const line = r.stdout.split("\n").find((l) => l.trimEnd().endsWith(`# handle ${handle}`));
  return line?.replace(/\s*# handle \d+\s*$/, "").replace(/counter packets \d+ bytes \d+ ?/, "").trim();
}
