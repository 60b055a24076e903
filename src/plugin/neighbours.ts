// A released address's neighbour entries on the node: an entry learnt for the old pod's
// MAC would send a new pod with the same address (and another MAC) nothing until the
// kernel re-validates it (seconds). DEL forgets them with the pod's conntrack entries.
import { isErrno, NUD, type Netlink } from "../kernel/index.ts";

export function forgetNeighbours(host: Netlink, addrs: string[]): void {
  if (addrs.length === 0) return;
  const mine = new Set(addrs);
  for (const n of host.neighs()) {
    // Permanent entries are someone's configuration, not something learnt.
    if (!n.ip || !mine.has(n.ip) || n.state & NUD.PERMANENT) continue;
    try {
      host.delNeigh({ index: n.index, ip: n.ip });
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ENODEV")) throw e;
    }
  }
}
