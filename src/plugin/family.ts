// Address helpers of the plugin. familyOf repeats src/cluster/cidr.ts's (which also takes
// CIDRs): left for the pass that makes one IP module (issue 11, item 2).
import type { Family } from "../kernel/index.ts";

export const familyOf = (addr: string): Family => (addr.includes(":") ? 6 : 4);
export const hostPrefix = (f: Family) => (f === 4 ? 32 : 128);
/** "10.244.1.5/24" -> "10.244.1.5" */
export const addrOf = (cidr: string) => cidr.split("/")[0]!;
