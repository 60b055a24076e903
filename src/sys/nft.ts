// The one place that runs the nft command: `nft -f -` applies a script as one atomic
// transaction. The plugin needs it only once per node (table creation) or for opt-in
// ipMasq; the agent for its rulesets. Per-pod work goes over netlink (src/kernel/nftables.ts).
import { spawnSync } from "bun";

export interface NftRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runNft(args: string[], stdin?: string): NftRun {
  const p = spawnSync(["nft", ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}
