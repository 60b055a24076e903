// Running nft inside a namespace (the trace tables of `explain --probe`, rule text by handle).
// Not on any CNI call's path: the insight commands are run by a person.
import { Nftables, type NftFamily, withNetns } from "../kernel/index.ts";
import { runNft, type NftRun } from "../sys/nft.ts";

/** nft in the namespace at path `netns`: spawned while this thread is in it (setns), so the child is too. */
export function nftIn(netns: string | undefined, args: string[], stdin?: string): NftRun {
  return netns === undefined ? runNft(args, stdin) : withNetns(netns, () => runNft(args, stdin));
}

/** The text of rule `handle` in a chain (as `nft -a list chain` prints it), without its handle. */
export function ruleText(netns: string | undefined, family: string, table: string, chain: string, handle: bigint): string | undefined {
  const r = nftIn(netns, ["-a", "list", "chain", family, table, chain]);
  const line = r.stdout.split("\n").find((l) => l.trimEnd().endsWith(`# handle ${handle}`));
  return line?.replace(/\s*# handle \d+\s*$/, "").replace(/counter packets \d+ bytes \d+ ?/, "").trim();
}

/** The comment of rule `handle` in a chain, read over netlink (no parsing of nft's text); undefined when it has none. */
export function ruleComment(netns: string | undefined, family: string, table: string, chain: string, handle: bigint): string | undefined {
  const nl = Nftables.open(netns);
  try {
    return nl.rules(family as NftFamily, table, chain).find((r) => r.handle === handle)?.comment;
  } catch {
    return undefined; // the chain went meanwhile
  } finally {
    nl.close();
  }
}
