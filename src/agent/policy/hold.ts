// The agent's use of the fail-closed hold (src/firewall/hold.ts has the table and its sets):
// create the table, read and release what the plugin held, one netlink socket per call.
import { ensureHoldTable, held, release } from "../../firewall/hold.ts";
import { Nftables } from "../../kernel/index.ts";

/** The fail-closed hold's table (inet mncni-hold, filled by the plugin): create, read and release. */
export interface HoldKernel {
  /** Creates the table when missing; returns whether it wrote. */
  ensure(apply: (script: string, what: string) => void): boolean;
  held(): string[];
  release(ips: string[]): void;
}

function withSocket<T>(fn: (nft: Nftables) => T): T {
  const nft = Nftables.open();
  try {
    return fn(nft);
  } finally {
    nft.close();
  }
}

export const systemHold: HoldKernel = {
  ensure: (apply) => withSocket((nft) => {
    const r = ensureHoldTable(nft, apply);
    return r === "created" || r === "replaced";
  }),
  held: () => withSocket(held),
  release: (ips) => withSocket((nft) => release(nft, ips)),
};
