// The fail-closed hold, in one place: pods added while the cluster has policies (conflist
// `policyHold: true`) have their addresses put into `inet mncni-hold`'s sets by the plugin,
// whose forward chain drops their traffic both ways; the agent takes them out once it has
// programmed the pod's policy (before answering a served ADD, or on its next pass). The agent
// creates the table when it first writes policyHold and never replaces it (it holds the
// plugin's elements); a missing table fails the ADD rather than let an unprogrammed pod
// through. Elements over netlink, on the caller's one socket: no nft process on the plugin
// path, no socket per address.
import { decodeKey, encodeKey, isErrno, type Nftables, type SetElemChange } from "../kernel/index.ts";
import { familyOf } from "../net/ip.ts";
import { HOLD, heldSet } from "./names.ts";
import { type ApplyScript, type Ensured, ensureTable, type WholeTable } from "./owned-table.ts";

const TYPE = { 4: "ipv4_addr", 6: "ipv6_addr" } as const;
const DROP = `counter drop comment "held until its policy is programmed"`;

export const HOLD_TABLE: WholeTable = {
  family: HOLD.family,
  name: HOLD.name,
  comment: HOLD.layout,
  body: `  set ${HOLD.set(4)} { type ipv4_addr; }
  set ${HOLD.set(6)} { type ipv6_addr; }
  chain ${HOLD.chain} {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr @${HOLD.set(4)} ${DROP}
    ip daddr @${HOLD.set(4)} ${DROP}
    ip6 saddr @${HOLD.set(6)} ${DROP}
    ip6 daddr @${HOLD.set(6)} ${DROP}
  }
`,
};

/** Thrown by hold() when the agent has not created the table. */
export class HoldTableMissing extends Error {}

/** Creates the table when missing; one written by an older agent (no comment) is kept: it works and holds pods. */
export function ensureHoldTable(nft: Nftables, apply: ApplyScript): Ensured {
  return ensureTable(nft, HOLD_TABLE, apply, () => "keep");
}

const changes = (op: "add" | "del", ips: readonly string[]): SetElemChange[] =>
  ([4, 6] as const).map((f) => ({ ...heldSet(f), op, elements: ips.filter((ip) => familyOf(ip) === f).map((ip) => ({ key: encodeKey([TYPE[f]], [ip]) })) }));

/** Holds the addresses, in one transaction. */
export function hold(nft: Nftables, ips: readonly string[]): void {
  try {
    nft.apply(changes("add", ips));
  } catch (e) {
    if (isErrno(e, "ENOENT")) throw new HoldTableMissing(`table ${HOLD.family} ${HOLD.name} is missing (policyHold is set: the agent creates it)`, { cause: e });
    throw e;
  }
}

/**
 * Releases the addresses in one transaction; addresses not held (another release came first:
 * the plugin's DEL, or the agent's pass) are fine, and so is a missing table.
 */
export function release(nft: Nftables, ips: readonly string[]): void {
  try {
    nft.apply(changes("del", ips));
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e;
    // One of them went meanwhile: the rest one by one, on the same socket.
    for (const ip of ips) {
      try {
        nft.apply(changes("del", [ip]));
      } catch (e2) {
        if (!isErrno(e2, "ENOENT")) throw e2;
      }
    }
  }
}

/** The held addresses; none when there is no table. */
export function held(nft: Nftables): string[] {
  try {
    return ([4, 6] as const).flatMap((f) => nft.setElements(heldSet(f)).map((e) => decodeKey([TYPE[f]], e.key)[0]!));
  } catch (e) {
    if (isErrno(e, "ENOENT")) return [];
    throw e;
  }
}
