// The lab's DNS server: UDP and TCP on port 53 of the given addresses, answering from the
// current DnsZone. The wire format is dns-packet's (a kept library); this module only frames
// (TCP's two-byte length), truncates what does not fit a UDP answer, and sets the flags.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import * as dnsPacket from "dns-packet";
import type { DnsZone, Rcode } from "./zone.ts";

const RCODES: Record<Rcode | "FORMERR" | "SERVFAIL" | "NOTIMP", number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 };
/** A UDP answer without EDNS(0) fits 512 bytes (RFC 1035); with it, what the client offers, at most 1232 (the DNS flag day's size). */
const UDP_PLAIN = 512;
const UDP_EDNS_MAX = 1232;

/**
 * The answer to one query message, or undefined when it is not worth one (a response, or too
 * short for a header). `udp`: the answer must fit the datagram size the client can take.
 */
export function answer(zone: DnsZone, msg: Buffer, udp: boolean): Buffer | undefined {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0) return undefined;
  const id = msg.readUInt16BE(0);
  const rd = msg.readUInt16BE(2) & dnsPacket.RECURSION_DESIRED;
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return dnsPacket.encode({ type: "response", id, flags: rd | RCODES.FORMERR, questions: [] });
  }
  const opt = q.additionals?.find((a) => a.type === "OPT") as dnsPacket.OptAnswer | undefined;
  const edns: dnsPacket.Answer[] = opt ? [{ type: "OPT", name: ".", udpPayloadSize: UDP_EDNS_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
  const opcode = (msg.readUInt16BE(2) >> 11) & 0xf;
  const question = q.questions?.[0];
  if (opcode !== 0 || !question || (q.questions?.length ?? 0) !== 1) {
    return dnsPacket.encode({ type: "response", id, flags: rd | (opcode !== 0 ? RCODES.NOTIMP : RCODES.FORMERR), questions: q.questions ?? [], additionals: edns });
  }
  const found = zone.lookup(question.name, question.type as dnsPacket.RecordType | "ANY");
  const flags = rd | (found.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | RCODES[found.rcode];
  const full: dnsPacket.Packet = {
    type: "response", id, flags, questions: [question],
    answers: found.answers, authorities: found.authorities, additionals: [...found.additionals, ...edns],
  };
  const limit = opt ? Math.min(Math.max(opt.udpPayloadSize, UDP_PLAIN), UDP_EDNS_MAX) : UDP_PLAIN;
  if (!udp || dnsPacket.encodingLength(full) <= limit) return dnsPacket.encode(full);
  // Too big for the datagram: the additionals go first; if it still does not fit, TC (the client asks again over TCP).
  const trimmed: dnsPacket.Packet = { ...full, additionals: edns };
  if (dnsPacket.encodingLength(trimmed) <= limit) return dnsPacket.encode(trimmed);
  return dnsPacket.encode({ type: "response", id, flags: flags | dnsPacket.TRUNCATED_RESPONSE, questions: [question], additionals: edns });
}

export interface DnsServer {
  stop(): void;
}

/** TCP: each message has a two-byte length; a connection may carry several queries (RFC 7766). */
function serveTcpConnection(zone: () => DnsZone, sock: Socket): void {
  let buf = Buffer.alloc(0);
  sock.setTimeout(10_000, () => sock.destroy());
  sock.on("error", () => sock.destroy());
  sock.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0);
      const out = answer(zone(), buf.subarray(2, 2 + len), false);
      buf = buf.subarray(2 + len);
      if (out) {
        const framed = Buffer.alloc(2 + out.length);
        framed.writeUInt16BE(out.length, 0);
        out.copy(framed, 2);
        sock.write(framed);
      }
    }
  });
}

/** Listens on UDP and TCP `port` of every address; resolves once all are bound. */
export async function serveDns(opts: { addresses: string[]; port: number; zone: () => DnsZone }): Promise<DnsServer> {
  const udp: UdpSocket[] = [];
  const tcp: Server[] = [];
  const stop = () => {
    for (const s of udp) s.close();
    for (const s of tcp) s.close();
  };
  try {
    for (const address of opts.addresses) {
      const u = createSocket({ type: address.includes(":") ? "udp6" : "udp4", reuseAddr: true });
      udp.push(u);
      u.on("message", (msg, rinfo) => {
        const out = answer(opts.zone(), msg, true);
        if (out) u.send(out, rinfo.port, rinfo.address);
      });
      await new Promise<void>((res, rej) => {
        u.once("error", rej);
        u.bind(opts.port, address, () => res());
      });
      const t = createServer((sock) => serveTcpConnection(opts.zone, sock));
      tcp.push(t);
      await new Promise<void>((res, rej) => {
        t.once("error", rej);
        t.listen(opts.port, address, () => res());
      });
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { stop };
}
