// Numbers mncni gives meaning to in the kernel.

/**
 * The route protocol mncni tags its own routes with, so reconcilers can tell them apart
 * and remove only their own. 77 (0x4d, "M") is unused by iproute2's rt_protos.
 */
export const RTPROT_MNCNI = 0x4d;

export { RTPROT, RT_SCOPE, RT_TABLE, NUD, NTF, IFA_F } from "./codec.ts";
