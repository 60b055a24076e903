// A netlink socket (NETLINK_ROUTE unless told otherwise): sequence numbers, send, and a
// receive loop that turns NLMSG_ERROR into NetlinkError and follows multi-part dumps until
// NLMSG_DONE; batches of several messages in one datagram wait for every ACK.
// Every call is a synchronous syscall on the JS thread; buffers are reused across calls.
import { errno, sym } from "../sys/libc.ts";
import {
  Attrs, LE, NLMSG, NLMSG_HDRLEN, NLMSGERR_ATTR, NLM_F, Writer, align4, type Msg,
} from "./codec.ts";
import { NetlinkError } from "./errors.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_ADD_MEMBERSHIP = 1;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const MSG_PEEK = 0x2;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;
const RECV_SIZE = 64 * 1024;
const DUMP_RETRIES = 5;

export class NetlinkSocket {
  /** The request being built; begin() resets it. */
  readonly w = new Writer();
  private rbuf: Buffer;
  private rdv: DataView;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private closed = false;

  private constructor(private fd: number, recvSize: number, private readonly protocol: number) {
    this.rbuf = Buffer.alloc(recvSize);
    this.rdv = new DataView(this.rbuf.buffer, this.rbuf.byteOffset, this.rbuf.byteLength);
  }

  /**
   * Opens a socket in the calling thread's current network namespace. recvSize is the
   * initial receive buffer; it grows when a datagram does not fit (tests make it tiny).
   * protocol: NETLINK_ROUTE (default) or NETLINK_NETFILTER.
   */
  static open(o: { recvSize?: number; protocol?: number } = {}): NetlinkSocket {
    const protocol = o.protocol ?? NETLINK_ROUTE;
    const fd = sym.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw new NetlinkError("open netlink socket", errno());
    try {
      const sa = Buffer.alloc(12); // sockaddr_nl with nl_pid 0: the kernel picks our port id
      sa.writeUInt16LE(AF_NETLINK, 0);
      if (sym.bind(fd, sa, sa.length) < 0) throw new NetlinkError("bind netlink socket", errno());
      const one = Buffer.alloc(4);
      one.writeInt32LE(1, 0);
      // Optional: errors carry the kernel's explanation, and do not echo our request back.
      sym.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
      sym.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, one, 4);
    } catch (e) {
      sym.close(fd);
      throw e;
    }
    return new NetlinkSocket(fd, o.recvSize ?? RECV_SIZE, protocol);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sym.close(this.fd);
  }

  /** Starts a request in this.w; NLM_F_REQUEST is added. */
  begin(type: number, flags: number): Writer {
    if (this.closed) throw new NetlinkError("use netlink socket", 9 /* EBADF */);
    return this.w.begin(type, flags | NLM_F.REQUEST, this.nextSeq());
  }

  /** Starts another message behind the current one in this.w, for execBatch(). */
  append(type: number, flags: number): Writer {
    return this.w.next(type, flags | NLM_F.REQUEST, this.nextSeq());
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /**
   * Sends the request in this.w and reads until it completes: the ACK (NLM_F_ACK), NLMSG_DONE
   * (dumps) or the single reply (plain gets). onMsg sees every data message in between;
   * the Msg views the receive buffer and is only valid during the callback.
   * Returns true when a dump was marked inconsistent (NLM_F_DUMP_INTR).
   * o.dump says whether the request is a dump; by default that is read from rtnetlink's
   * numbering, so other protocols say it (dump() does).
   */
  exec(op: string, onMsg?: (m: Msg) => void, o: { dump?: boolean } = {}): boolean {
    const len = this.w.finish();
    const reqType = this.w.buf.readUInt16LE(4);
    const flags = this.w.buf.readUInt16LE(6);
    const seq = this.seq;
    // rtnetlink numbers requests NEW, DEL, GET, SET per object, so GETs are 2 mod 4; the
    // DUMP bits mean REPLACE/EXCL on the other requests.
    const isDump = o.dump ?? (this.protocol === NETLINK_ROUTE && (reqType & 3) === 2 && (flags & NLM_F.DUMP) === NLM_F.DUMP);
    const wantAck = (flags & NLM_F.ACK) !== 0;
    this.send(op, len);
    let intr = false;
    // A callback that throws must not abandon a dump half-read: the kernel would refuse the
    // socket's next dump (EBUSY). Keep reading to the end, then rethrow.
    let failure: { error: unknown } | undefined;
    const done = (): boolean => {
      if (failure) throw failure.error;
      return intr;
    };
    const msg: Msg = { type: 0, flags: 0, buf: this.rbuf, dv: this.rdv, start: 0, end: 0 };
    for (;;) {
      const n = this.recv(op);
      const dv = this.rdv;
      msg.buf = this.rbuf;
      msg.dv = dv;
      for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
        const mlen = dv.getUint32(off, LE);
        if (mlen < NLMSG_HDRLEN || off + mlen > n) throw new NetlinkError(`${op} (malformed reply)`, 71 /* EPROTO */);
        const type = dv.getUint16(off + 4, LE);
        const mflags = dv.getUint16(off + 6, LE);
        const mseq = dv.getUint32(off + 8, LE);
        const next = off + align4(mlen);
        if (mseq !== seq) {
          off = next; // a late reply to an earlier request that we gave up on
          continue;
        }
        if (mflags & NLM_F.DUMP_INTR) intr = true;
        if (type === NLMSG.ERROR) {
          const err = -dv.getInt32(off + NLMSG_HDRLEN, LE);
          if (err === 0) return done(); // ACK
          throw new NetlinkError(op, err, { extack: this.extack(off, mlen, mflags) });
        }
        if (type === NLMSG.DONE) {
          const err = mlen >= NLMSG_HDRLEN + 4 ? -dv.getInt32(off + NLMSG_HDRLEN, LE) : 0;
          if (err > 0) throw new NetlinkError(op, err, { extack: this.extack(off, mlen, mflags) });
          return done();
        }
        if (type !== NLMSG.NOOP && type !== NLMSG.OVERRUN && onMsg && !failure) {
          msg.type = type;
          msg.flags = mflags;
          msg.start = off + NLMSG_HDRLEN;
          msg.end = off + mlen;
          try {
            onMsg(msg);
          } catch (error) {
            failure = { error };
          }
        }
        if (!isDump && !wantAck && !(mflags & NLM_F.MULTI)) return done();
        off = next;
      }
    }
  }

  /**
   * A dump (NLM_F_DUMP) collecting what parse returns; restarted from scratch when the
   * kernel reports that the table changed under it (NLM_F_DUMP_INTR).
   */
  dump<T>(op: string, type: number, build: (w: Writer) => void, parse: (m: Msg) => T | undefined): T[] {
    for (let attempt = 0; ; attempt++) {
      const out: T[] = [];
      build(this.begin(type, NLM_F.DUMP));
      const intr = this.exec(op, (m) => {
        const v = parse(m);
        if (v !== undefined) out.push(v);
      }, { dump: true });
      if (!intr || attempt >= DUMP_RETRIES) return out;
    }
  }

  /**
   * Sends every message in this.w (begin() then append()) as one datagram and waits for the
   * reply to each message that asked for an ACK. ops[i] names message i for its error. The
   * first failure is thrown once every ACK is in, so no late reply is left behind. An error
   * answering a message that asked for no ACK ends the wait at once: nfnetlink sends one,
   * first, when it rejects the batch as a whole (bad batch header, commit failure, out of
   * memory); ACKs that may still follow are skipped later by their sequence numbers.
   * Messages that ask for no ACK report nothing on success, so flag every one inside.
   */
  execBatch(ops: string[]): void {
    const len = this.w.finish();
    const buf = this.w.buf;
    const index = new Map<number, number>(); // seq -> message index
    const pending = new Set<number>(); // seqs still owed an ACK
    for (let off = 0, i = 0; off + NLMSG_HDRLEN <= len; i++) {
      const seq = buf.readUInt32LE(off + 8);
      index.set(seq, i);
      if (buf.readUInt16LE(off + 6) & NLM_F.ACK) pending.add(seq);
      off += align4(buf.readUInt32LE(off));
    }
    const opOf = (seq: number) => ops[index.get(seq)!] ?? ops[ops.length - 1] ?? "send netlink batch";
    this.send(opOf(this.seq), len);
    let first: NetlinkError | undefined;
    while (pending.size > 0) {
      const n = this.recv(opOf(this.seq));
      const dv = this.rdv;
      for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
        const mlen = dv.getUint32(off, LE);
        if (mlen < NLMSG_HDRLEN || off + mlen > n) throw new NetlinkError(`${opOf(this.seq)} (malformed reply)`, 71 /* EPROTO */);
        const seq = dv.getUint32(off + 8, LE);
        if (dv.getUint16(off + 4, LE) === NLMSG.ERROR && index.has(seq)) {
          const err = -dv.getInt32(off + NLMSG_HDRLEN, LE);
          const failure = err === 0 ? undefined : new NetlinkError(opOf(seq), err, { extack: this.extack(off, mlen, dv.getUint16(off + 6, LE)) });
          if (!pending.has(seq)) {
            if (failure) throw failure;
          } else {
            pending.delete(seq);
            first ??= failure;
          }
        }
        off += align4(mlen);
      }
    }
    if (first) throw first;
  }

  /** Joins a multicast group (NETLINK_ADD_MEMBERSHIP): the kernel's events of that group arrive on this socket. */
  joinGroup(group: number): void {
    const g = Buffer.alloc(4);
    g.writeUInt32LE(group, 0);
    if (sym.setsockopt(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g, 4) < 0) throw new NetlinkError(`join netlink group ${group}`, errno());
  }

  /**
   * Reads the events that arrive within timeoutMs (SO_RCVTIMEO bounds each wait), handing
   * each message to onMsg; returns when a wait ends with nothing new. For sockets that
   * joined a group: unsolicited messages, no sequence numbers.
   */
  receiveEvents(timeoutMs: number, onMsg: (m: Msg) => void): void {
    const tv = Buffer.alloc(16);
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    if (sym.setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) < 0) throw new NetlinkError("set netlink receive timeout", errno());
    const msg: Msg = { type: 0, flags: 0, buf: this.rbuf, dv: this.rdv, start: 0, end: 0 };
    for (;;) {
      let n: number;
      try {
        n = this.recv("receive netlink events");
      } catch (e) {
        if (e instanceof NetlinkError && (e.errno === EAGAIN || e.errno === ENOBUFS)) {
          if (e.errno === ENOBUFS) continue; // events were lost to overflow: read on
          return;
        }
        throw e;
      }
      this.eachMessage(n, msg, onMsg);
    }
  }

  /** Hands each message of the datagram in rbuf (n bytes) to onMsg, through one reused Msg. */
  private eachMessage(n: number, msg: Msg, onMsg: (m: Msg) => void): number {
    let count = 0;
    msg.buf = this.rbuf;
    msg.dv = this.rdv;
    for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
      const mlen = this.rdv.getUint32(off, LE);
      if (mlen < NLMSG_HDRLEN || off + mlen > n) break;
      msg.type = this.rdv.getUint16(off + 4, LE);
      msg.flags = this.rdv.getUint16(off + 6, LE);
      msg.start = off + NLMSG_HDRLEN;
      msg.end = off + mlen;
      count++;
      onMsg(msg);
      off += align4(mlen);
    }
    return count;
  }

  private send(op: string, len: number): void {
    for (;;) {
      const n = sym.sendto(this.fd, this.w.buf, len, 0, null, 0);
      if (n >= 0) return;
      if (errno() !== EINTR) throw new NetlinkError(`${op} (send)`, errno());
    }
  }

  /** Reads one datagram, growing the buffer first when it would not fit (MSG_TRUNC). */
  private recv(op: string): number {
    for (;;) {
      const n = sym.recv(this.fd, this.rbuf, this.rbuf.length, MSG_PEEK | MSG_TRUNC);
      if (n < 0) {
        if (errno() === EINTR) continue;
        throw new NetlinkError(`${op} (receive)`, errno());
      }
      if (n > this.rbuf.length) {
        this.rbuf = Buffer.alloc(align4(n) + 4096);
        this.rdv = new DataView(this.rbuf.buffer, this.rbuf.byteOffset, this.rbuf.byteLength);
        continue;
      }
      // The datagram is already in rbuf: drop it from the queue without copying it again.
      if (sym.recv(this.fd, this.rbuf, 0, MSG_TRUNC) < 0 && errno() !== EINTR) {
        throw new NetlinkError(`${op} (receive)`, errno());
      }
      return n;
    }
  }

  /**
   * Reads every datagram already queued (a subscription's messages, e.g. NFLOG), without
   * waiting: onMsg sees each message (valid during the callback). Returns how many it saw.
   */
  drain(onMsg: (m: Msg) => void): number {
    let count = 0;
    const msg: Msg = { type: 0, flags: 0, buf: this.rbuf, dv: this.rdv, start: 0, end: 0 };
    for (;;) {
      const peek = sym.recv(this.fd, this.rbuf, this.rbuf.length, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
      if (peek < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) return count;
        // ENOBUFS: the kernel dropped messages we were too slow for; the rest still come.
        if (e === ENOBUFS) continue;
        throw new NetlinkError("receive netlink messages", e);
      }
      count += this.eachMessage(this.recv("receive netlink messages"), msg, onMsg);
    }
  }

  /** The NLMSGERR_ATTR_MSG text of an error message, if the kernel attached one. */
  private extack(off: number, mlen: number, mflags: number): string | undefined {
    if (!(mflags & NLM_F.ACK_TLVS)) return undefined;
    const errStart = off + NLMSG_HDRLEN;
    const origLen = this.rdv.getUint32(errStart + 4, LE);
    const tlvStart = errStart + 4 + (mflags & NLM_F.CAPPED ? NLMSG_HDRLEN : align4(origLen));
    if (tlvStart >= off + mlen) return undefined;
    return new Attrs(this.rbuf, this.rdv, tlvStart, off + mlen).str(NLMSGERR_ATTR.MSG) || undefined;
  }
}
