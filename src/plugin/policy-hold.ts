// Fail-closed hold for pods added while the cluster has policies (conflist `policyHold: true`):
// the plugin puts the pod's addresses into the agent's `inet mncni-hold` sets, whose forward
// chain drops their traffic both ways; the agent takes them out once it has programmed the
// pod's policy (before answering a served ADD, or on its next pass). The agent creates the
// table when it first writes policyHold; a missing table fails the ADD rather than let an
// unprogrammed pod through. Elements over netlink: no nft process on the plugin path.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { encodeKey, isErrno, Nftables, type SetRef } from "../kernel/index.ts";
import { familyOf } from "../net/ip.ts";

export const HOLD_TABLE = "mncni-hold";
export const heldSet = (family: 4 | 6): SetRef => ({ family: "inet", table: HOLD_TABLE, set: `held_${family}` });
const key = (ip: string) => encodeKey([familyOf(ip) === 4 ? "ipv4_addr" : "ipv6_addr"], [ip]);

function change(op: "add" | "del", ips: string[]): void {
  const nft = Nftables.open();
  try {
    nft.apply(([4, 6] as const).map((f) => ({ ...heldSet(f), op, elements: ips.filter((ip) => familyOf(ip) === f).map((ip) => ({ key: key(ip) })) })));
  } finally {
    nft.close();
  }
}

/** Holds the pod's addresses; throws a CNI error when the agent's hold table is missing. */
export function holdPod(ips: string[]): void {
  try {
    change("add", ips);
  } catch (e) {
    if (isErrno(e, "ENOENT")) {
      throw new CniError(ErrorCode.Internal, `cannot hold pod addresses "${ips.join(", ")}" until policy is programmed: table inet ${HOLD_TABLE} is missing (policyHold is set: the agent creates it)`);
    }
    throw e;
  }
}

/** Releases addresses (undo of a failed ADD; the agent's release); ones not held are fine. */
export function releasePod(ips: string[]): void {
  for (const ip of ips) {
    try {
      change("del", [ip]);
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
  }
}
