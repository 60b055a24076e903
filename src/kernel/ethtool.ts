// Device offload settings over the SIOCETHTOOL ioctl (ethtool has no netlink family we can
// rely on in every kernel mncni supports; the ioctl works everywhere). Acts in the calling
// thread's network namespace: the ioctl socket is opened there.
import { ptr } from "bun:ffi";
import { errno, sym } from "../sys/libc.ts";
import { NetlinkError } from "./errors.ts";

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCETHTOOL = 0x8946;
const ETHTOOL_GTXCSUM = 0x16;
const ETHTOOL_STXCSUM = 0x17;
const IFNAMSIZ = 16;
/** struct ifreq: the name, then a union whose ifr_data member is a pointer. */
const IFREQ_LEN = 40;

/** One SIOCETHTOOL call with a struct ethtool_value { u32 cmd; u32 data; }: returns data. */
function ethtoolValue(ifname: string, cmd: number, data: number, what: string): number {
  const value = Buffer.alloc(8);
  value.writeUInt32LE(cmd, 0);
  value.writeUInt32LE(data, 4);
  const ifr = Buffer.alloc(IFREQ_LEN);
  if (Buffer.byteLength(ifname) >= IFNAMSIZ) throw new TypeError(`cannot ${what} "${ifname}": name longer than ${IFNAMSIZ - 1} bytes`);
  ifr.write(ifname, 0, "utf8");
  ifr.writeBigUInt64LE(BigInt(ptr(value)), IFNAMSIZ);
  const fd = sym.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new NetlinkError(`${what} "${ifname}"`, errno());
  try {
    if (sym.ioctl(fd, SIOCETHTOOL, ifr) < 0) throw new NetlinkError(`${what} "${ifname}"`, errno());
  } finally {
    sym.close(fd);
  }
  return value.readUInt32LE(4);
}

/** Whether transmit checksum offload (every tx-checksum-* feature) is on. */
export function txChecksumOn(ifname: string): boolean {
  return ethtoolValue(ifname, ETHTOOL_GTXCSUM, 0, "read tx checksum offload of") !== 0;
}

/** `ethtool -K IF tx off`: ETHTOOL_STXCSUM clears every tx-checksum-* feature (tx-checksum-ip-generic among them). */
export function setTxChecksum(ifname: string, on: boolean): void {
  ethtoolValue(ifname, ETHTOOL_STXCSUM, on ? 1 : 0, "set tx checksum offload of");
}
