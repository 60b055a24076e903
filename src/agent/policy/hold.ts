// The agent's side of the fail-closed hold (the plugin's side: src/plugin/policy-hold.ts):
// the table, created once (never replaced: it holds the plugin's elements), and its sets
// read and released over netlink.
import { decodeKey, encodeKey, isErrno, Nftables } from "../../kernel/index.ts";
import { familyOf } from "../../net/ip.ts";
import { heldSet, HOLD_TABLE } from "../../plugin/policy-hold.ts";

/** The fail-closed hold's sets (inet mncni-hold, filled by the plugin): read and release. */
export interface HoldKernel {
  held(): string[];
  release(ips: string[]): void;
}

export const HOLD_TABLE_SCRIPT = `table inet ${HOLD_TABLE} {
  set held_4 { type ipv4_addr; }
  set held_6 { type ipv6_addr; }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr @held_4 counter drop comment "held until its policy is programmed"
    ip daddr @held_4 counter drop comment "held until its policy is programmed"
    ip6 saddr @held_6 counter drop comment "held until its policy is programmed"
    ip6 daddr @held_6 counter drop comment "held until its policy is programmed"
  }
}
`;

const TYPE = { 4: "ipv4_addr", 6: "ipv6_addr" } as const;

export const systemHold: HoldKernel = {
  held() {
    const nft = Nftables.open();
    try {
      return ([4, 6] as const).flatMap((f) => nft.setElements(heldSet(f)).map((e) => decodeKey([TYPE[f]], e.key)[0]!));
    } finally {
      nft.close();
    }
  },
  release(ips) {
    const nft = Nftables.open();
    const del = (list: string[]) =>
      nft.apply(([4, 6] as const).map((f) => ({ ...heldSet(f), op: "del" as const, elements: list.filter((ip) => familyOf(ip) === f).map((ip) => ({ key: encodeKey([TYPE[f]], [ip]) })) })));
    try {
      del(ips);
    } catch (e) {
      // One of them went meanwhile (the plugin's DEL releases its pod's): the rest one by one.
      if (!isErrno(e, "ENOENT")) throw e;
      for (const ip of ips) {
        try {
          del([ip]);
        } catch (e2) {
          if (!isErrno(e2, "ENOENT")) throw e2;
        }
      }
    } finally {
      nft.close();
    }
  },
};
