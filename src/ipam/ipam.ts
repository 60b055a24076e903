// The IPAM verbs on host-local's on-disk store, as the mncni plugin calls them in-process
// and the standalone mncni-ipam handlers expose them.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { containerIdProblem, ifnameProblem } from "../cni/names.ts";
import type { Attachment, Result } from "../cni/types.ts";
import { allocate, check, gc, release, status } from "./allocator.ts";
import type { IpamConfig } from "./config.ts";
import { DiskStore } from "./disk-store.ts";
import { readResolvConf } from "./resolv-conf.ts";
import { formatIp, parseIpOrCidr } from "./ip-bigint.ts";
import type { AttachmentKey } from "./store.ts";

export interface AllocateRequest {
  network: string;
  containerId: string;
  ifname: string;
  /** From the `ips` capability, args.cni.ips or CNI_ARGS IP= (see requestedIpsFrom). */
  requestedIps?: string[];
}

export interface ReservationKey {
  network: string;
  containerId: string;
  ifname: string;
}

/** The key ends up inside reservation files: refuse values that would corrupt the format. */
function keyOf(k: ReservationKey): AttachmentKey {
  const idWhy = containerIdProblem(k.containerId);
  if (idWhy) throw new CniError(ErrorCode.InvalidEnv, `invalid env variable CNI_CONTAINERID "${k.containerId}": ${idWhy}`);
  const ifWhy = ifnameProblem(k.ifname);
  if (ifWhy) throw new CniError(ErrorCode.InvalidEnv, `invalid env variable CNI_IFNAME "${k.ifname}": ${ifWhy}`);
  return { containerId: k.containerId, ifname: k.ifname };
}

export interface Allocation {
  result: Result;
  /** The addresses given whose previous holder's conntrack flows may remain (plain). */
  flowsMayRemain: string[];
}

/** One address per range set, the config's routes and DNS; cniVersion is left to the caller. */
export function ipamAllocate(conf: IpamConfig, req: AllocateRequest): Allocation {
  const key = keyOf(req);
  const dns = conf.resolvConf ? readResolvConf(conf.resolvConf) : conf.dns;
  const store = new DiskStore(conf.dataDir, req.network);
  const ips = allocate({ store, ranges: conf.ranges, network: req.network, key, requestedIps: req.requestedIps });
  const result: Result = { cniVersion: "", ips, routes: conf.routes.map((r) => ({ ...r })) };
  if (dns) result.dns = structuredClone(dns);
  const flowsMayRemain = ips.map((i) => parseIpOrCidr(i.address)!).filter((ip) => store.flowsMayRemain(ip)).map(formatIp);
  return { result, flowsMayRemain };
}

export function ipamAdd(conf: IpamConfig, req: AllocateRequest): Result {
  return ipamAllocate(conf, req).result;
}

/** Releases every address of the attachment (succeeds when there is none); returns them, plain. */
export function ipamDel(conf: IpamConfig, k: ReservationKey): string[] {
  const store = new DiskStore(conf.dataDir, k.network);
  if (!store.exists()) return [];
  return release(store, keyOf(k)).map(formatIp);
}

/** A DEL forgot the conntrack flows of these released addresses (plain): their next holders need not. */
export function ipamFlowsForgotten(conf: IpamConfig, network: string, addrs: readonly string[]): void {
  const store = new DiskStore(conf.dataDir, network);
  store.flowsForgotten(addrs.flatMap((a) => parseIpOrCidr(a) ?? []));
}

/** Throws unless the attachment holds one address per range set (and exactly `expected`, if given). */
export function ipamCheck(conf: IpamConfig, k: ReservationKey, expected?: string[]): void {
  const store = new DiskStore(conf.dataDir, k.network);
  check({ store, ranges: conf.ranges, network: k.network, key: keyOf(k), expected });
}

/** The network's reservations (read without the lock: a snapshot), addresses plain; none before its first. */
export function ipamReservations(dataDir: string, network: string): { containerId: string; ifname?: string; address: string }[] {
  const store = new DiskStore(dataDir, network);
  if (!store.exists()) return [];
  return store.list().reservations.map((r) => ({ containerId: r.containerId, ...(r.ifname !== undefined ? { ifname: r.ifname } : {}), address: formatIp(r.ip) }));
}

/** Releases reservations of attachments not in `valid`; returns the released addresses. */
export function ipamGc(conf: IpamConfig, network: string, valid: Attachment[]): string[] {
  const store = new DiskStore(conf.dataDir, network);
  if (!store.exists()) return [];
  return gc({ store, network, valid });
}

/** Throws CniError 50 when ADD could not be served (a range set exhausted, state not writable). */
export function ipamStatus(conf: IpamConfig, network: string): void {
  let store: DiskStore;
  try {
    store = new DiskStore(conf.dataDir, network);
  } catch (e) {
    throw new CniError(ErrorCode.PluginNotAvailable, `cannot serve ADD on network "${network}": ${(e as Error).message}`, "", { cause: e });
  }
  status({ store, ranges: conf.ranges, network });
}
