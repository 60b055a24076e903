// nft for the plugin: failures become CNI errors (code 5) carrying the script as details.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { runNft } from "../sys/nft.ts";

export function nftApply(script: string, what: string): void {
  let r;
  try {
    r = runNft(["-f", "-"], script);
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `cannot ${what}: cannot run nft: ${(e as Error).message}`, "", { cause: e });
  }
  if (r.code !== 0) throw new CniError(ErrorCode.IOFailure, `cannot ${what}: nft: ${r.stderr.trim()}`, script);
}
