import type { Family } from "./mode.ts";

export const familyOf = (addr: string): Family => (addr.includes(":") ? 6 : 4);
export const hostPrefix = (f: Family) => (f === 4 ? 32 : 128);
/** "10.244.1.5/24" -> "10.244.1.5" */
export const addrOf = (cidr: string) => cidr.split("/")[0]!;
