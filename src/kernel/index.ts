// Public entry of src/kernel: rtnetlink, nftables set elements, network namespaces, sysctls.
// eBPF has its own entry, bpf/index.ts: every plugin process loads this one, and only the
// fast path needs bpf/.
export { Netlink } from "./netlink.ts";
export { NetlinkError, isErrno } from "./errors.ts";
export { withNetns, openNetnsFd } from "./netns.ts";
export { sysctlGet, sysctlSet } from "./sysctl.ts";
export { RTPROT_MNCNI, RTPROT, RT_SCOPE, RT_TABLE, NUD, NTF, IFA_F } from "./constants.ts";
export type { Link, VxlanInfo, VethOpts, NetkitOpts, BridgeOpts, VxlanOpts, SetLinkOpts, BridgePortOpts } from "./link.ts";
export type { Addr, AddAddrOpts } from "./addr.ts";
export type { RouteSpec, RouteInfo, RouteFilter, RouteType, ScopeName } from "./route.ts";
export type { NeighSpec, NeighInfo, NeighFamily, AddNeighOpts } from "./neigh.ts";
export {
  Nftables, encodeKey, decodeKey, keyLength, keyHasPrefix, NFPROTO, IPPROTO,
  NFT_COMMENT_MAXLEN, type NftFamily, type NftTable, type NftChainInfo, type NftRuleInfo, type NftKeyType, type SetRef, type SetElement, type SetElemChange,
} from "./nftables.ts";
export { Conntrack, type CtEntry, type CtView } from "./conntrack.ts";
export { TC_H_INGRESS, TC_H_ROOT, type TbfOpts, type QdiscInfo, type BpfFilterOpts, type BpfFilterInfo } from "./tc.ts";
export { TraceListener, type TraceEvent } from "./nftrace.ts";
export type { RouteQuery } from "./route.ts";
