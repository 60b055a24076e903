// Numbers mncni gives meaning to in the kernel.
import type { Family } from "../net/ip.ts";

/**
 * The route protocol mncni tags its own routes with, so reconcilers can tell them apart
 * and remove only their own. 77 (0x4d, "M") is unused by iproute2's rt_protos.
 */
export const RTPROT_MNCNI = 0x4d;

export { RTPROT, RT_SCOPE, RT_TABLE, NUD, NTF, IFA_F } from "./codec.ts";

/** Address families of the socket API, as netlink messages carry them. */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

export function afOf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}
