// Public entry of the IPAM module: host-local compatible allocation, used in-process by
// the mncni plugin and as the standalone mncni-ipam plugin.
export { parseIpamConfig, type IpamConfig, type Range, type RangeSet } from "./config.ts";
export { ipamAdd, ipamAllocate, ipamDel, ipamFlowsForgotten, ipamReservations, ipamCheck, ipamGc, ipamStatus, type AllocateRequest, type Allocation, type ReservationKey } from "./ipam.ts";
export { requestedIpsFrom } from "./requested-ips.ts";
export { ipamHandlers } from "./handlers.ts";
export { IPAM_CHECK_FAILED } from "./allocator.ts";
export type { Store, AttachmentKey, Reservation } from "./store.ts";
