// kube-proxy's rule layouts (as of Kubernetes 1.33) generated for a list of Services, so a
// test or benchmark can put a node namespace in the state kube-proxy would leave it in and
// check that mncni carries that traffic and leaves those rules alone. Two layouts:
// - iptables mode, as `iptables-restore` input (iptables-nft, Debian's default, turns it into
//   the `ip filter` / `ip nat` tables): KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* with
//   `statistic --mode random --probability 1/n`, KUBE-NODEPORTS (behind the `addrtype LOCAL`
//   rule at the end of KUBE-SERVICES), KUBE-EXT-* for NodePorts, KUBE-MARK-MASQ and
//   KUBE-POSTROUTING's masquerade, KUBE-FORWARD accepting marked and established traffic;
// - nftables mode, as an `nft -f` script: table `ip kube-proxy` with the base chains of
//   pkg/proxy/nftables (filter-* at dstnat-10, nat-* at dstnat/srcnat), the `service-ips` and
//   `service-nodeports` verdict maps, `service-*`, `external-*` and `endpoint-*` chains, numgen
//   load balancing, `mark-for-masquerade` and `masquerading`.
// Written from the upstream proxiers' structure (chain names hashed as upstream does, so the
// layout reads as a real node's would); only what a Service of type ClusterIP or NodePort
// with externalTrafficPolicy Cluster and no session affinity produces, IPv4.
import { createHash } from "node:crypto";

export type KpProtocol = "TCP" | "UDP";

export interface KpServicePort {
  /** The port's name ("" for a single unnamed port). */
  name: string;
  protocol: KpProtocol;
  port: number;
  targetPort: number;
  nodePort?: number;
}

export interface KpService {
  namespace: string;
  name: string;
  clusterIP: string;
  ports: KpServicePort[];
  /** Ready endpoint addresses (each serves every port on its targetPort). */
  endpoints: string[];
}

export interface KpOptions {
  /** --cluster-cidr: traffic to a ClusterIP from outside it is masqueraded. */
  clusterCIDR: string;
  /** --iptables-masquerade-bit (default 14: mark 0x4000). */
  masqueradeBit?: number;
}

/** RFC 4648 base32 (what Go's base32.StdEncoding writes), enough for hashed chain names. */
function base32(b: Uint8Array): string {
  const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let out = "";
  let bits = 0;
  let v = 0;
  for (const x of b) {
    v = (v << 8) | x;
    bits += 8;
    while (bits >= 5) {
      out += A[(v >>> (bits - 5)) & 31];
      bits -= 5;
    }
    v &= (1 << bits) - 1;
  }
  if (bits > 0) out += A[(v << (5 - bits)) & 31];
  return out;
}

const sha32 = (s: string) => base32(createHash("sha256").update(s).digest());
/** "ns/name:port" (upstream's ServicePortName.String(); no ":" for an unnamed port). */
const portName = (s: KpService, p: KpServicePort) => `${s.namespace}/${s.name}${p.name ? `:${p.name}` : ""}`;
const proto = (p: KpServicePort) => p.protocol.toLowerCase();
const mark = (o: KpOptions) => `0x${(1 << (o.masqueradeBit ?? 14)).toString(16)}`;

// iptables chain names: a prefix and 16 base32 characters of sha256(portName + protocol [+ endpoint]).
export const svcChain = (s: KpService, p: KpServicePort) => `KUBE-SVC-${sha32(portName(s, p) + proto(p)).slice(0, 16)}`;
const extChain = (s: KpService, p: KpServicePort) => `KUBE-EXT-${sha32(portName(s, p) + proto(p)).slice(0, 16)}`;
const sepChain = (s: KpService, p: KpServicePort, ep: string) => `KUBE-SEP-${sha32(portName(s, p) + proto(p) + `${ep}:${p.targetPort}`).slice(0, 16)}`;

const q = (s: string) => `"${s}"`;

/** The iptables layout, for `iptables-restore` (without --noflush it replaces the filter and nat tables). */
export function iptablesLayout(services: readonly KpService[], o: KpOptions): string {
  const m = mark(o);
  const filter: string[] = ["*filter"];
  const filterChains = ["KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-KUBELET-CANARY", "KUBE-NODEPORTS", "KUBE-PROXY-CANARY", "KUBE-PROXY-FIREWALL", "KUBE-SERVICES"];
  filter.push(":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...filterChains.map((c) => `:${c} - [0:0]`));
  filter.push(
    `-A INPUT -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes load balancer firewall")} -j KUBE-PROXY-FIREWALL`,
    `-A INPUT -m comment --comment ${q("kubernetes health check service ports")} -j KUBE-NODEPORTS`,
    `-A INPUT -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes externally-visible service portals")} -j KUBE-EXTERNAL-SERVICES`,
    "-A INPUT -j KUBE-FIREWALL",
    `-A FORWARD -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes load balancer firewall")} -j KUBE-PROXY-FIREWALL`,
    `-A FORWARD -m comment --comment ${q("kubernetes forwarding rules")} -j KUBE-FORWARD`,
    `-A FORWARD -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes service portals")} -j KUBE-SERVICES`,
    `-A FORWARD -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes externally-visible service portals")} -j KUBE-EXTERNAL-SERVICES`,
    `-A OUTPUT -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes load balancer firewall")} -j KUBE-PROXY-FIREWALL`,
    `-A OUTPUT -m conntrack --ctstate NEW -m comment --comment ${q("kubernetes service portals")} -j KUBE-SERVICES`,
    "-A OUTPUT -j KUBE-FIREWALL",
    `-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment ${q("block incoming localnet connections")} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    `-A KUBE-FORWARD -m comment --comment ${q("kubernetes forwarding rules")} -m mark --mark ${m}/${m} -j ACCEPT`,
    `-A KUBE-FORWARD -m comment --comment ${q("kubernetes forwarding conntrack rule")} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    "COMMIT",
  );

  const chains: string[] = [];
  const rules: string[] = [];
  for (const s of services) {
    for (const p of s.ports) {
      const name = portName(s, p);
      const pr = proto(p);
      const svc = svcChain(s, p);
      chains.push(svc);
      const match = `-m ${pr} -p ${pr} -d ${s.clusterIP} --dport ${p.port}`;
      rules.push(`-A KUBE-SERVICES -m comment --comment ${q(`${name} cluster IP`)} ${match} -j ${svc}`);
      rules.push(`-A ${svc} -m comment --comment ${q(`${name} cluster IP`)} ${match} ! -s ${o.clusterCIDR} -j KUBE-MARK-MASQ`);
      s.endpoints.forEach((ep, i) => {
        const sep = sepChain(s, p, ep);
        const n = s.endpoints.length - i;
        const stat = n > 1 ? ` -m statistic --mode random --probability ${(1 / n).toFixed(10)}` : "";
        rules.push(`-A ${svc} -m comment --comment ${q(`${name} -> ${ep}:${p.targetPort}`)}${stat} -j ${sep}`);
        chains.push(sep);
        rules.push(`-A ${sep} -m comment --comment ${name} -s ${ep} -j KUBE-MARK-MASQ`);
        rules.push(`-A ${sep} -m comment --comment ${name} -m ${pr} -p ${pr} -j DNAT --to-destination ${ep}:${p.targetPort}`);
      });
      if (p.nodePort) {
        const ext = extChain(s, p);
        chains.push(ext);
        rules.push(`-A KUBE-NODEPORTS -m comment --comment ${name} -m ${pr} -p ${pr} --dport ${p.nodePort} -j ${ext}`);
        rules.push(`-A ${ext} -m comment --comment ${q(`masquerade traffic for ${name} external destinations`)} -j KUBE-MARK-MASQ`);
        rules.push(`-A ${ext} -j ${svc}`);
      }
    }
  }
  const nat = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
    ...["KUBE-KUBELET-CANARY", "KUBE-MARK-MASQ", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-PROXY-CANARY", "KUBE-SERVICES", ...chains].map((c) => `:${c} - [0:0]`),
    `-A PREROUTING -m comment --comment ${q("kubernetes service portals")} -j KUBE-SERVICES`,
    `-A OUTPUT -m comment --comment ${q("kubernetes service portals")} -j KUBE-SERVICES`,
    `-A POSTROUTING -m comment --comment ${q("kubernetes postrouting rules")} -j KUBE-POSTROUTING`,
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${m}`,
    `-A KUBE-POSTROUTING -m mark ! --mark ${m}/${m} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${m}`,
    `-A KUBE-POSTROUTING -m comment --comment ${q("kubernetes service traffic requiring SNAT")} -j MASQUERADE --random-fully`,
    ...rules,
    `-A KUBE-SERVICES -m comment --comment ${q("kubernetes service nodeports; NOTE: this must be the last rule in this chain")} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
    "COMMIT",
  ];
  return [...filter, ...nat, ""].join("\n");
}

/** nftables chain names: a prefix, 8 base32 characters of sha256(base), then the base itself. */
function nftName(prefix: string, base: string): string {
  return `${prefix}${sha32(base).slice(0, 8)}-${base}`;
}
const nftBase = (s: KpService, p: KpServicePort) => `${s.namespace}/${s.name}/${proto(p)}/${p.name}`;
const nftQ = (name: string) => name;

const nftEndpointChain = (s: KpService, p: KpServicePort, ep: string) => nftName("endpoint-", `${nftBase(s, p)}__${ep}/${p.targetPort}`);

/** A Service port's chain: the masquerade mark for traffic from outside the cluster, then numgen over its endpoints' chains. */
function nftServiceRules(s: KpService, p: KpServicePort, o: KpOptions): string[] {
  const eps = s.endpoints.map((ep) => nftEndpointChain(s, p, ep));
  return [
    `ip daddr ${s.clusterIP} ${proto(p)} dport ${p.port} ip saddr != ${o.clusterCIDR} jump mark-for-masquerade`,
    ...(eps.length ? [`numgen random mod ${eps.length} vmap { ${eps.map((c, i) => `${i} : goto ${nftQ(c)}`).join(", ")} }`] : []),
  ];
}

/** An endpoint's chain: hairpin traffic marked for masquerade, then the DNAT. */
const nftEndpointRules = (p: KpServicePort, ep: string) => [`ip saddr ${ep} jump mark-for-masquerade`, `meta l4proto ${proto(p)} dnat to ${ep}:${p.targetPort}`];

export const KUBE_PROXY_NFT_TABLE = { family: "ip", name: "kube-proxy" } as const;

/** The nftables layout, for `nft -f`: deletes and re-creates table `ip kube-proxy` in one transaction. */
export function nftablesLayout(services: readonly KpService[], o: KpOptions): string {
  const m = `0x${(1 << (o.masqueradeBit ?? 14)).toString(16).padStart(6, "0")}`;
  const t = `${KUBE_PROXY_NFT_TABLE.family} ${KUBE_PROXY_NFT_TABLE.name}`;
  const out: string[] = [`table ${t} {}`, `delete table ${t}`, `table ${t} {`, `  comment "rules for kube-proxy"`];
  const chain = (name: string, body: string[], hook?: string) => {
    out.push(`  chain ${nftQ(name)} {`, ...(hook ? [`    ${hook}`] : []), ...body.map((r) => `    ${r}`), "  }");
  };
  chain("filter-prerouting", ["ct state new jump firewall-check"], "type filter hook prerouting priority -110; policy accept;");
  chain("filter-input", ["ct state new jump endpoints-check"], "type filter hook input priority -110; policy accept;");
  chain("filter-forward", ["ct state new jump endpoints-check"], "type filter hook forward priority -110; policy accept;");
  chain("filter-output", ["ct state new jump endpoints-check", "ct state new jump firewall-check"], "type filter hook output priority -110; policy accept;");
  chain("nat-prerouting", ["jump services"], "type nat hook prerouting priority -100; policy accept;");
  chain("nat-output", ["jump services"], "type nat hook output priority -100; policy accept;");
  chain("nat-postrouting", ["jump masquerading"], "type nat hook postrouting priority 100; policy accept;");
  const vmap = (name: string, key: string, comment: string) => out.push(`  map ${name} {`, `    type ${key} : verdict`, `    comment "${comment}"`, "  }");
  vmap("no-endpoint-services", "ipv4_addr . inet_proto . inet_service", "vmap to drop or reject packets to services with no endpoints");
  vmap("no-endpoint-nodeports", "inet_proto . inet_service", "vmap to drop or reject packets to service nodeports with no endpoints");
  vmap("firewall-ips", "ipv4_addr . inet_proto . inet_service", "destinations that are subject to LoadBalancerSourceRanges");
  vmap("service-ips", "ipv4_addr . inet_proto . inet_service", "ClusterIP, ExternalIP and LoadBalancer IP traffic");
  vmap("service-nodeports", "inet_proto . inet_service", "NodePort traffic");
  chain("reject-chain", ["reject"]);
  chain("endpoints-check", ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services", "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"]);
  chain("firewall-check", ["ip daddr . meta l4proto . th dport vmap @firewall-ips"]);
  chain("services", ["ip daddr . meta l4proto . th dport vmap @service-ips", "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"]);
  chain("mark-for-masquerade", [`mark set mark or ${m}`]);
  chain("masquerading", [`mark and ${m} == 0 return`, `mark set mark xor ${m}`, "masquerade fully-random"]);
  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  for (const s of services) {
    for (const p of s.ports) {
      const pr = proto(p);
      const svc = nftName("service-", nftBase(s, p));
      chain(svc, nftServiceRules(s, p, o));
      for (const ep of s.endpoints) chain(nftEndpointChain(s, p, ep), nftEndpointRules(p, ep));
      serviceIps.push(`${s.clusterIP} . ${pr} . ${p.port} : goto ${nftQ(svc)}`);
      if (p.nodePort) {
        const ext = nftName("external-", nftBase(s, p));
        chain(ext, ["jump mark-for-masquerade", `goto ${nftQ(svc)}`]);
        nodePorts.push(`${pr} . ${p.nodePort} : goto ${nftQ(ext)}`);
      }
    }
  }
  out.push("}");
  if (serviceIps.length) out.push(`add element ${t} service-ips { ${serviceIps.join(", ")} }`);
  if (nodePorts.length) out.push(`add element ${t} service-nodeports { ${nodePorts.join(", ")} }`);
  return `${out.join("\n")}\n`;
}

/**
 * kube-proxy's partial sync after a Service's endpoints changed from `before` to `after` (same
 * Service and ports), for `nft -f` on a table `nftablesLayout` wrote: the new endpoints' chains
 * added, the Service's chains rewritten, the chains of endpoints gone flushed and deleted.
 */
export function nftablesEndpointsChange(before: KpService, after: KpService, o: KpOptions): string {
  const t = `${KUBE_PROXY_NFT_TABLE.family} ${KUBE_PROXY_NFT_TABLE.name}`;
  const out: string[] = [];
  for (const p of after.ports) {
    const svc = nftName("service-", nftBase(after, p));
    for (const ep of after.endpoints.filter((e) => !before.endpoints.includes(e))) {
      const c = nftEndpointChain(after, p, ep);
      out.push(`add chain ${t} ${nftQ(c)}`, ...nftEndpointRules(p, ep).map((r) => `add rule ${t} ${nftQ(c)} ${r}`));
    }
    out.push(`flush chain ${t} ${nftQ(svc)}`, ...nftServiceRules(after, p, o).map((r) => `add rule ${t} ${nftQ(svc)} ${r}`));
    for (const ep of before.endpoints.filter((e) => !after.endpoints.includes(e))) {
      const c = nftEndpointChain(before, p, ep);
      out.push(`flush chain ${t} ${nftQ(c)}`, `delete chain ${t} ${nftQ(c)}`);
    }
  }
  return `${out.join("\n")}\n`;
}
