// The lab DNS zone against the Kubernetes DNS specification (records of a ClusterIP Service,
// a headless Service, PTR, the pod records, NXDOMAIN vs NODATA), and the wire answers built
// from it (decoded back with dns-packet: flags, truncation, TCP). The server under a real
// resolver is in test/lab/lab-dns.e2e.test.ts.
import { describe, expect, test } from "bun:test";
import * as dnsPacket from "dns-packet";
import { answer } from "../../src/lab/dns/server.ts";
import { DnsZone, reverseName, type DnsEndpointSlice, type DnsService } from "../../src/lab/dns/zone.ts";

const web: DnsService = {
  namespace: "apps", name: "web", clusterIPs: ["10.96.0.10", "fd00:96::a"], headless: false,
  ports: [{ name: "http", protocol: "TCP", port: 80 }, { name: "", protocol: "UDP", port: 53 }],
};
const db: DnsService = { namespace: "apps", name: "db", clusterIPs: [], headless: true, ports: [{ name: "pg", protocol: "TCP", port: 5432 }] };
const empty: DnsService = { namespace: "apps", name: "empty", clusterIPs: [], headless: true, ports: [] };
const dbSlice: DnsEndpointSlice = {
  namespace: "apps", service: "db",
  endpoints: [
    { addresses: ["10.244.1.2"], ready: true, hostname: "db-0" },
    { addresses: ["10.244.2.3"], ready: true },
    { addresses: ["10.244.2.9"], ready: false },
  ],
  ports: [{ name: "pg", protocol: "TCP", port: 15432 }],
};
const zone = new DnsZone([web, db, empty], [dbSlice, { namespace: "apps", service: "empty", endpoints: [{ addresses: ["10.244.3.3"], ready: false }], ports: [] }]);
/** An answer's data (an OPT record has none). */
const dataOf = (a: dnsPacket.Answer) => (a as { data?: unknown }).data;
const data = (name: string, type: dnsPacket.RecordType) => zone.lookup(name, type).answers.map(dataOf);

describe("lab DNS zone", () => {
  test("ClusterIP Service: A, AAAA, SRV for named ports only, PTR per cluster IP", () => {
    expect(data("web.apps.svc.cluster.local", "A")).toEqual(["10.96.0.10"]);
    expect(data("WEB.Apps.svc.cluster.local.", "AAAA")).toEqual(["fd00:96::a"]);
    expect(data("_http._tcp.web.apps.svc.cluster.local", "SRV")).toEqual([{ priority: 0, weight: 100, port: 80, target: "web.apps.svc.cluster.local" }]);
    expect(zone.lookup("_http._tcp.web.apps.svc.cluster.local", "SRV").additionals.map(dataOf)).toEqual(["10.96.0.10", "fd00:96::a"]);
    expect(zone.lookup("_._udp.web.apps.svc.cluster.local", "SRV").rcode).toBe("NXDOMAIN");
    expect(reverseName("10.96.0.10")).toBe("10.0.96.10.in-addr.arpa");
    expect(reverseName("fd00:96::a")).toBe(`a.${"0.".repeat(23)}6.9.0.0.0.0.d.f.ip6.arpa`);
    expect(data("10.0.96.10.in-addr.arpa", "PTR")).toEqual(["web.apps.svc.cluster.local"]);
    expect(data(reverseName("fd00:96::a"), "PTR")).toEqual(["web.apps.svc.cluster.local"]);
  });

  test("headless Service: ready endpoints only, by hostname or a system-assigned one; SRV to each, with the endpoint's port", () => {
    expect(data("db.apps.svc.cluster.local", "A").sort()).toEqual(["10.244.1.2", "10.244.2.3"]);
    expect(data("db-0.db.apps.svc.cluster.local", "A")).toEqual(["10.244.1.2"]);
    expect(data("10-244-2-3.db.apps.svc.cluster.local", "A")).toEqual(["10.244.2.3"]);
    expect(zone.lookup("10-244-2-9.db.apps.svc.cluster.local", "A").rcode).toBe("NXDOMAIN");
    expect(data("_pg._tcp.db.apps.svc.cluster.local", "SRV")).toEqual([
      { priority: 0, weight: 100, port: 15432, target: "db-0.db.apps.svc.cluster.local" },
      { priority: 0, weight: 100, port: 15432, target: "10-244-2-3.db.apps.svc.cluster.local" },
    ]);
    expect(data("2.1.244.10.in-addr.arpa", "PTR")).toEqual(["db-0.db.apps.svc.cluster.local"]);
    // No ready endpoint: NXDOMAIN, as the specification says.
    expect(zone.lookup("empty.apps.svc.cluster.local", "A").rcode).toBe("NXDOMAIN");
  });

  test("schema version, pod records, NODATA for names that exist, NXDOMAIN with the SOA otherwise", () => {
    expect(data("dns-version.cluster.local", "TXT")).toEqual(["1.0.1"]);
    expect(data("10-244-1-7.apps.pod.cluster.local", "A")).toEqual(["10.244.1.7"]);
    expect(data("fd00-10-244-1--7.apps.pod.cluster.local", "AAAA")).toEqual(["fd00:10:244:1::7"]);
    for (const [name, type] of [["web.apps.svc.cluster.local", "TXT"], ["apps.svc.cluster.local", "A"], ["svc.cluster.local", "A"], ["cluster.local", "A"]] as const) {
      const r = zone.lookup(name, type);
      expect({ name, rcode: r.rcode, answers: r.answers.length, soa: r.authorities[0]?.type }).toEqual({ name, rcode: "NOERROR", answers: 0, soa: "SOA" });
    }
    for (const name of ["nope.apps.svc.cluster.local", "web.other.svc.cluster.local", "web.apps", "11.0.96.10.in-addr.arpa"]) {
      expect({ name, rcode: zone.lookup(name, "A").rcode }).toEqual({ name, rcode: "NXDOMAIN" });
    }
    expect(zone.lookup("example.com", "A").authoritative).toBe(false);
  });
});

describe("lab DNS answers on the wire", () => {
  const query = (name: string, type: dnsPacket.RecordType, extra: Partial<dnsPacket.Packet> = {}) =>
    dnsPacket.encode({ type: "query", id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: "IN" }], ...extra });

  test("an answer keeps the id, the question and RD, sets AA in the zone, and says NXDOMAIN by its rcode", () => {
    const a = dnsPacket.decode(answer(zone, query("web.apps.svc.cluster.local", "A"), true)!);
    expect({ id: a.id, qr: a.flag_qr, aa: a.flag_aa, rd: a.flag_rd, rcode: (a as unknown as { rcode: string }).rcode }).toEqual({ id: 4242, qr: true, aa: true, rd: true, rcode: "NOERROR" });
    expect(a.answers!.map((x) => [x.name, x.type, dataOf(x)])).toEqual([["web.apps.svc.cluster.local", "A", "10.96.0.10"]]);
    const nx = dnsPacket.decode(answer(zone, query("nope.apps.svc.cluster.local", "A"), true)!) as unknown as { rcode: string; authorities: dnsPacket.Answer[] };
    expect(nx.rcode).toBe("NXDOMAIN");
    expect(nx.authorities.map((x) => x.type)).toEqual(["SOA"]);
  });

  test("a UDP answer that does not fit 512 bytes is truncated (TC) without EDNS, whole over TCP or with EDNS", () => {
    const many: DnsEndpointSlice = { namespace: "apps", service: "big", endpoints: Array.from({ length: 20 }, (_, i) => ({ addresses: [`10.244.9.${i + 1}`], ready: true })), ports: [] };
    const big = new DnsZone([{ namespace: "apps", name: "big", clusterIPs: [], headless: true, ports: [] }], [many]);
    const q = query("big.apps.svc.cluster.local", "A");
    const udp = dnsPacket.decode(answer(big, q, true)!);
    expect({ tc: udp.flag_tc, answers: udp.answers!.length }).toEqual({ tc: true, answers: 0 });
    expect(dnsPacket.decode(answer(big, q, false)!).answers!.length).toBe(20);
    const edns = query("big.apps.svc.cluster.local", "A", { additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
    const e = dnsPacket.decode(answer(big, edns, true)!);
    expect({ tc: e.flag_tc, answers: e.answers!.length, opt: e.additionals!.some((x) => x.type === "OPT") }).toEqual({ tc: false, answers: 20, opt: true });
  });

  test("garbage gets FORMERR with its id; a response is not answered; another opcode gets NOTIMP", () => {
    const junk = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    const f = dnsPacket.decode(answer(zone, junk, true)!) as unknown as { id: number; rcode: string };
    expect({ id: f.id, rcode: f.rcode }).toEqual({ id: 0x1234, rcode: "FORMERR" });
    const resp = dnsPacket.encode({ type: "response", id: 1, questions: [{ name: "a", type: "A" }] });
    expect(answer(zone, resp, true)).toBeUndefined();
    const notify = query("web.apps.svc.cluster.local", "A");
    notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2);
    expect((dnsPacket.decode(answer(zone, notify, true)!) as unknown as { rcode: string }).rcode).toBe("NOTIMP");
  });
});
