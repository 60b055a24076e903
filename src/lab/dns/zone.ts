// The records of the Kubernetes DNS specification (github.com/kubernetes/dns,
// docs/specification.md, schema 1.0.1) for a set of Services and their EndpointSlices: what
// the lab's DNS server answers. Pure: the server rebuilds a zone whenever the cluster changes
// and looks names up in it. Names are compared case-insensitively, as the specification says.
import type { Answer, RecordType } from "dns-packet";
import { normalizeIP } from "../../net/cidr.ts";

/** The schema version in `dns-version.<zone>` TXT. */
export const DNS_SCHEMA_VERSION = "1.0.1";
export const CLUSTER_DOMAIN = "cluster.local";
/** Seconds; short, as CoreDNS's kubernetes plugin (5): the lab's Services change under a test. */
export const DNS_TTL = 5;

/** A Service as DNS needs it (the Service proxy's ServiceInfo has these fields). */
export interface DnsService {
  namespace: string;
  name: string;
  clusterIPs: readonly string[];
  headless: boolean;
  ports: readonly { name: string; protocol: string; port: number }[];
}

/** An EndpointSlice as DNS needs it (the Service proxy's EndpointSliceInfo has these fields). */
export interface DnsEndpointSlice {
  namespace: string;
  /** The Service it belongs to (kubernetes.io/service-name). */
  service: string;
  endpoints: readonly { addresses: readonly string[]; ready: boolean; hostname?: string }[];
  ports: readonly { name: string; protocol: string; port?: number }[];
}

export type Rcode = "NOERROR" | "NXDOMAIN";

export interface Lookup {
  rcode: Rcode;
  answers: Answer[];
  /** A/AAAA of the SRV targets (the specification allows them in the Additional section). */
  additionals: Answer[];
  /** The zone's SOA on a negative answer (NXDOMAIN, or a name without records of that type), for negative caching. */
  authorities: Answer[];
  /** Whether the zone is authoritative for the name (the AA flag). */
  authoritative: boolean;
}

interface Rr {
  type: RecordType;
  data: unknown;
}

/** `10.96.0.1` -> `1.0.96.10.in-addr.arpa`; IPv6 by nibbles under ip6.arpa. */
export function reverseName(ip: string): string {
  const n = normalizeIP(ip);
  if (!n) throw new Error(`cannot reverse "${ip}": not an IP address`);
  if (!n.includes(":")) return `${n.split(".").reverse().join(".")}.in-addr.arpa`;
  return `${expand6(n).replaceAll(":", "").split("").reverse().join(".")}.ip6.arpa`;
}

/** The full 8-group form of an IPv6 address (fd00::1 -> fd00:0000:...:0001). */
function expand6(ip: string): string {
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => g.padStart(4, "0")).join(":");
}

/** The system-assigned hostname of an endpoint without one (as CoreDNS: its address with dashes). */
export const endpointHostname = (ip: string) => ip.replaceAll(/[.:]/g, "-");

const familyType = (ip: string): "A" | "AAAA" => (ip.includes(":") ? "AAAA" : "A");

export class DnsZone {
  private readonly records = new Map<string, Rr[]>();
  /** Names that exist (with records, or above names with records): NODATA rather than NXDOMAIN. */
  private readonly names = new Set<string>();

  constructor(services: Iterable<DnsService>, slices: Iterable<DnsEndpointSlice>, readonly domain = CLUSTER_DOMAIN) {
    this.domain = domain.toLowerCase().replace(/\.$/, "");
    this.add(`dns-version.${this.domain}`, "TXT", DNS_SCHEMA_VERSION);
    this.exists(`svc.${this.domain}`);
    this.exists(`pod.${this.domain}`);
    const byService = new Map<string, DnsEndpointSlice[]>();
    for (const sl of slices) {
      const key = `${sl.namespace}/${sl.service}`;
      byService.set(key, [...(byService.get(key) ?? []), sl]);
    }
    for (const svc of services) this.addService(svc, byService.get(`${svc.namespace}/${svc.name}`) ?? []);
  }

  private serviceName(svc: DnsService): string {
    return `${svc.name}.${svc.namespace}.svc.${this.domain}`.toLowerCase();
  }

  private addService(svc: DnsService, slices: DnsEndpointSlice[]): void {
    const name = this.serviceName(svc);
    const named = svc.ports.filter((p) => p.name);
    const srvName = (p: { name: string; protocol: string }) => `_${p.name}._${p.protocol.toLowerCase()}.${name}`;
    if (!svc.headless) {
      // 2.3: A/AAAA of the cluster IPs, SRV per named port to the Service's name, PTR per cluster IP.
      if (svc.clusterIPs.length === 0) return;
      for (const ip of svc.clusterIPs) {
        this.add(name, familyType(ip), ip);
        this.add(reverseName(ip), "PTR", name);
      }
      for (const p of named) this.add(srvName(p), "SRV", { priority: 0, weight: 100, port: p.port, target: name });
      return;
    }
    // 2.4: a headless Service has a name only while it has ready endpoints (NXDOMAIN otherwise).
    for (const sl of slices) {
      for (const ep of sl.endpoints) {
        if (!ep.ready) continue;
        for (const ip of ep.addresses) {
          const host = `${(ep.hostname ?? endpointHostname(ip)).toLowerCase()}.${name}`;
          this.add(name, familyType(ip), ip);
          this.add(host, familyType(ip), ip);
          this.add(reverseName(ip), "PTR", host);
          // No proxy translates a headless Service's port: SRV names the port the endpoint serves.
          for (const p of named) {
            const served = sl.ports.find((e) => e.name === p.name && e.protocol === p.protocol)?.port ?? p.port;
            this.add(srvName(p), "SRV", { priority: 0, weight: 100, port: served, target: host });
          }
        }
      }
    }
  }

  private add(name: string, type: RecordType, data: unknown): void {
    const list = this.records.get(name) ?? [];
    // A dual-stack endpoint or two slices may name one address twice: one record each.
    if (!list.some((r) => r.type === type && JSON.stringify(r.data) === JSON.stringify(data))) list.push({ type, data });
    this.records.set(name, list);
    this.exists(name);
  }

  /** The name and every name above it inside the zone exist (empty non-terminals answer NODATA). */
  private exists(name: string): void {
    const suffix = name.endsWith(".in-addr.arpa") ? "in-addr.arpa" : name.endsWith(".ip6.arpa") ? "ip6.arpa" : this.domain;
    for (let n = name; n.length >= suffix.length; n = n.slice(n.indexOf(".") + 1)) {
      this.names.add(n);
      if (!n.includes(".")) break;
    }
  }

  private inZone(name: string): boolean {
    return name === this.domain || name.endsWith(`.${this.domain}`) || name.endsWith(".in-addr.arpa") || name.endsWith(".ip6.arpa");
  }

  private soa(): Answer {
    return {
      type: "SOA", name: this.domain, ttl: DNS_TTL, class: "IN",
      data: { mname: `ns.dns.${this.domain}`, rname: `hostmaster.${this.domain}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: DNS_TTL },
    };
  }

  /** 2.6 (deprecated, still required): `a-b-c-d.<ns>.pod.<zone>` is that address, for any address. */
  private podRecord(name: string): Rr | undefined {
    const m = new RegExp(`^([0-9a-f-]+)\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\\.pod\\.${this.domain.replaceAll(".", "\\.")}$`).exec(name);
    if (!m) return undefined;
    const dashed = m[1]!;
    const v4 = /^\d{1,3}(-\d{1,3}){3}$/.test(dashed) ? dashed.replaceAll("-", ".") : undefined;
    const ip = normalizeIP(v4 ?? dashed.replaceAll("-", ":"));
    return ip ? { type: familyType(ip), data: ip } : undefined;
  }

  lookup(qname: string, qtype: RecordType | "ANY"): Lookup {
    const name = qname.toLowerCase().replace(/\.$/, "");
    const pod = this.podRecord(name);
    const rrs = pod ? [pod] : (this.records.get(name) ?? []);
    const out: Lookup = { rcode: "NOERROR", answers: [], additionals: [], authorities: [], authoritative: this.inZone(name) };
    if (!pod && !this.names.has(name)) {
      out.rcode = "NXDOMAIN";
      if (out.authoritative) out.authorities.push(this.soa());
      return out;
    }
    const rr = (type: RecordType, data: unknown): Answer => ({ name: qname.replace(/\.$/, ""), type, ttl: DNS_TTL, class: "IN", data } as Answer);
    for (const r of rrs) if (qtype === "ANY" || r.type === qtype) out.answers.push(rr(r.type, r.data));
    if (out.answers.length === 0) out.authorities.push(this.soa());
    for (const a of out.answers) {
      if (a.type !== "SRV") continue;
      const target = (a.data as { target: string }).target;
      for (const r of this.records.get(target) ?? []) {
        if (r.type === "A" || r.type === "AAAA") out.additionals.push({ name: target, type: r.type, ttl: DNS_TTL, class: "IN", data: r.data as string });
      }
    }
    return out;
  }

  /** Every record, for `lab status` and tests: `name type data`. */
  dump(): string[] {
    return [...this.records].flatMap(([n, rrs]) => rrs.map((r) => `${n} ${r.type} ${typeof r.data === "string" ? r.data : JSON.stringify(r.data)}`)).sort();
  }
}
