// Deleting the UDP conntrack entries that keep clients on a stale path (StaleUdp, from the
// element compiler): a UDP "connection" lives as long as its client keeps sending, and its
// entry keeps the translation (or the lack of one) it got from its first datagram.
import { Conntrack, IPPROTO } from "../../kernel/index.ts";
import { parseIP } from "../../net/ip.ts";
import type { StaleUdp } from "./elements.ts";

/**
 * Deletes, with one dump in the namespace `netnsPath` (this one without it), the UDP entries
 * through endpoints that went away, and the untranslated entries to Service keys that gained
 * endpoints; returns how many went.
 * A key's entries are deleted only when their reply comes from the key itself (not
 * translated: made while it had no endpoints, or before it existed). An entry translated to
 * an endpoint is live: one made between the table's write and this dump, or any at all when
 * every key is new to the compiler (a restarted agent's first pass).
 */
export function forgetStaleUdp(stale: readonly StaleUdp[], netnsPath?: string): number {
  const endpoints = stale.filter((s) => s.by === "endpoint").map((s) => ({ addr: parseIP(s.ip).bytes, dports: new Set(s.dports) }));
  const keys = new Map<string, Set<number>>();
  for (const s of stale) if (s.by === "service") for (const p of s.dports) (keys.get(s.ip) ?? keys.set(s.ip, new Set()).get(s.ip)!).add(p);
  const ct = Conntrack.open(netnsPath);
  try {
    return ct.deleteWhere(undefined, (v) => {
      if (v.protocol !== IPPROTO.udp || v.dport === undefined) return false;
      if (endpoints.some((s) => s.dports.has(v.dport!) && v.involves(s.addr))) return true;
      return keys.size > 0 && (keys.get(v.origDst())?.has(v.dport) ?? false) && !v.dstTranslated();
    });
  } finally {
    ct.close();
  }
}
