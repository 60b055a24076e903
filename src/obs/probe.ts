// The probe packet of `explain --probe`: one UDP datagram, TCP SYN or ICMP echo sent from
// inside a namespace, with a source chosen by the caller (a spoofed one is sent with
// IP_TRANSPARENT, as a compromised pod could). Raw libc sockets, so the packet leaves from
// exactly the namespace the socket was made in. IPv4 or IPv6, as the destination is.
import { withNetns } from "../kernel/index.ts";
import { parseIP } from "../net/ip.ts";
import { getSystemErrorMessage, getSystemErrorName } from "node:util";
import { errno, sym } from "../sys/libc.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_ICMPV6 = 58;
const SOL_IPV6 = 41;
const IPV6_TRANSPARENT = 75;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const IPPROTO_ICMP = 1;
const SOL_IP = 0;
const IP_TRANSPARENT = 19;

export type ProbeProto = "udp" | "tcp" | "icmp";

export interface ProbeSpec {
  netns?: string;
  src?: string;
  /** The source is not the namespace's own address: allow binding it anyway. */
  spoof?: boolean;
  dst: string;
  proto: ProbeProto;
  port: number;
}

function sockaddr(ip: string, port: number): Buffer {
  if (ip.includes(":")) {
    // sockaddr_in6: family, port, flowinfo, address, scope id.
    const b = Buffer.alloc(28);
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    Buffer.from(parseIP(ip, 6).bytes).copy(b, 8);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(parseIP(ip, 4).bytes).copy(b, 4);
  return b;
}

/** An echo request; for ICMPv6 the kernel fills in the checksum (it covers a pseudo-header). */
function icmpEcho(v6: boolean): Buffer {
  const b = Buffer.alloc(16);
  b[0] = v6 ? 128 : 8; // echo request
  b.writeUInt16BE(process.pid & 0xffff, 4);
  b.writeUInt16BE(1, 6);
  b.write("mncni-ex", 8);
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  if (!v6) b.writeUInt16BE(~sum & 0xffff, 2);
  return b;
}

/** Sends the packet; returns a function that closes the socket (after the trace was read). */
export function sendProbe(p: ProbeSpec): () => void {
  const fail = (what: string): never => {
    throw new Error(`cannot send probe ${p.proto} to "${p.dst}": ${what}: ${describeErrno(errno())}`);
  };
  const v6 = p.dst.includes(":");
  const make = () => {
    const type = p.proto === "tcp" ? SOCK_STREAM : p.proto === "udp" ? SOCK_DGRAM : SOCK_RAW;
    const fd = sym.socket(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK, p.proto === "icmp" ? (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP) : 0);
    if (fd < 0) fail("socket");
    return fd;
  };
  const fd = p.netns ? withNetns(p.netns, make) : make();
  try {
    if (p.src) {
      if (p.spoof) {
        const one = Buffer.alloc(4);
        one.writeInt32LE(1, 0);
        if (sym.setsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, one, 4) < 0) fail(v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT");
      }
      const sa = sockaddr(p.src, 0);
      if (sym.bind(fd, sa, sa.length) < 0) fail(`bind ${p.src}`);
    }
    const to = sockaddr(p.dst, p.proto === "icmp" ? 0 : p.port);
    if (p.proto === "tcp") {
      // Non-blocking: the SYN is sent, EINPROGRESS is the expected answer.
      if (sym.connect(fd, to, to.length) < 0 && errno() !== 115) fail("connect");
    } else {
      const payload = p.proto === "icmp" ? icmpEcho(v6) : Buffer.from("mncni explain probe\n");
      if (sym.sendto(fd, payload, payload.length, 0, to, to.length) < 0) fail("sendto");
    }
  } catch (e) {
    sym.close(fd);
    throw e;
  }
  return () => sym.close(fd);
}

const SOL_SOCKET = 1;
const SO_ERROR = 4;
const EINPROGRESS = 115;

/**
 * The kernel's own answer to a TCP connect from the current namespace: the errno
 * (ENETUNREACH, ECONNREFUSED, ...), or undefined when the connection is accepted or still
 * pending after waitMs. Bun (1.4) reports every failed connect as ECONNREFUSED, even when
 * the kernel said "Network is unreachable"; this asks again with a libc socket of our own.
 */
export async function connectError(dst: string, port: number, waitMs = 200): Promise<number | undefined> {
  const fd = sym.socket(dst.includes(":") ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return undefined;
  try {
    const to = sockaddr(dst, port);
    if (sym.connect(fd, to, to.length) < 0) {
      const e = errno();
      if (e !== EINPROGRESS) return e;
    } else return undefined;
    // Pending: a reset or an ICMP error lands in SO_ERROR within a round trip.
    const err = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    for (const deadline = Date.now() + waitMs; Date.now() < deadline; await Bun.sleep(10)) {
      len.writeUInt32LE(4, 0);
      if (sym.getsockopt(fd, SOL_SOCKET, SO_ERROR, err, len) < 0) return undefined;
      const e = err.readInt32LE(0);
      if (e !== 0) return e;
    }
    return undefined;
  } finally {
    sym.close(fd);
  }
}

/** "ENETUNREACH (Network is unreachable)": the name and the words the kernel's strerror has. */
export function describeErrno(n: number): string {
  const msg = getSystemErrorMessage(-n);
  return `${getSystemErrorName(-n)} (${msg.charAt(0).toUpperCase()}${msg.slice(1)})`;
}
