// The plugin's use of the fail-closed hold (src/firewall/hold.ts has the table and its sets):
// the pod's addresses held and released on the plugin's one nftables socket, kernel errors
// worded as CNI errors.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { hold, HoldTableMissing, release } from "../firewall/hold.ts";
import { withNftables } from "./nft-socket.ts";

/** Holds the pod's addresses; throws a CNI error when the agent's hold table is missing. */
export function holdPod(ips: string[]): void {
  withNftables(`hold pod addresses "${ips.join(", ")}"`, (nft) => {
    try {
      hold(nft, ips);
    } catch (e) {
      if (e instanceof HoldTableMissing) throw new CniError(ErrorCode.Internal, `cannot hold pod addresses "${ips.join(", ")}" until policy is programmed: ${e.message}`);
      throw e;
    }
  });
}

/** Releases addresses (undo of a failed ADD; DEL); ones not held are fine. */
export function releasePod(ips: string[]): void {
  withNftables(`release pod addresses "${ips.join(", ")}"`, (nft) => release(nft, ips));
}
