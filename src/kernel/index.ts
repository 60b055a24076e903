// Public entry of src/kernel: rtnetlink, nftables set elements, network namespaces, sysctls, bpf.
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
export { Asm, R, type Reg } from "./bpf/asm.ts";
export { BpfError, PROG_TYPE, MAP_TYPE, possibleCpus, progLoad, progInfo, progTestRun, fdById, mapId, closeBpfFd, type ProgInfo, type TestRun } from "./bpf/syscall.ts";
export { PlainPodsMap, loadPodRedirect, podRedirectProgram, type PlainPod, type FastPathMaps } from "./bpf/pod-redirect.ts";
export { VERDICTS, VerdictCounters, type Verdict, type VerdictCount } from "./bpf/verdicts.ts";
export { HostGwRoutesMap, type HostGwRoute } from "./bpf/host-gw-routes.ts";
export { loadUnderlayIngress, underlayIngressProgram } from "./bpf/underlay-ingress.ts";
export { TraceListener, type TraceEvent } from "./nftrace.ts";
export type { RouteQuery } from "./route.ts";
