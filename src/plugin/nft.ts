// Applies an nftables script atomically with `nft -f -` (one transaction). Used only by
// the opt-in firewall features of the plugin (anti-spoofing, ipMasq) and by the agent.
import { CniError, ErrorCode } from "../cni/errors.ts";

export function nftApply(script: string, what: string): void {
  let p;
  try {
    p = Bun.spawnSync(["nft", "-f", "-"], { stdin: Buffer.from(script), stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot ${what}: cannot run nft: ${(e as Error).message}`, "", { cause: e });
  }
  if (p.exitCode !== 0) {
    throw new CniError(ErrorCode.IOFailure, `cannot ${what}: nft: ${p.stderr.toString().trim()}`, script);
  }
}

export function nftJson(args: string[]): unknown | undefined {
  const p = Bun.spawnSync(["nft", "-j", ...args], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) return undefined;
  return JSON.parse(p.stdout.toString());
}
