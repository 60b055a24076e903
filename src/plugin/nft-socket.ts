// The plugin's one nftables socket and the error wording of its use, shared by the tables
// mncni owns (anti-spoofing, hostPort).
import { stat } from "../sys/files.ts";
import { CniError, ErrorCode } from "../cni/errors.ts";
import { Nftables } from "../kernel/index.ts";

/**
 * The process keeps one nftables socket, for the namespace it was opened in, and leaves
 * closing it to process exit. Closing a NETLINK_NETFILTER socket waits until the kernel
 * has freed what transactions in its namespace deleted (an RCU grace period, 5-20 ms
 * measured here; every `nft` run pays it on exit). Left to exit, that wait overlaps with
 * the work that follows the change instead of adding to it: for DEL, deleting the veth.
 */
let cached: { netns: bigint; nft: Nftables } | undefined;

export function nftables(): Nftables {
  // The socket pins its namespace, so an inode seen here cannot be reused by another one.
  const netns = stat("/proc/thread-self/ns/net").ino;
  if (cached?.netns !== netns) {
    cached?.nft.close();
    cached = { netns, nft: Nftables.open() };
  }
  return cached.nft;
}

/** Runs fn on the socket and turns kernel errors into CNI errors naming what was attempted. */
export function withNftables<T>(what: string, fn: (nft: Nftables) => T): T {
  try {
    return fn(nftables());
  } catch (e) {
    if (e instanceof CniError) throw e;
    throw new CniError(ErrorCode.IOFailure, `cannot ${what}: ${(e as Error).message}`, "", { cause: e });
  }
}
