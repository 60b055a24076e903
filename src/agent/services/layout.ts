// The Service proxy's nftables layout (`inet mncni-services`), after kube-proxy's nftables
// mode (pkg/proxy/nftables/README.md) with one difference that matters at scale: endpoints
// are map elements, not rules. kube-proxy writes a chain per Service and per endpoint, so an
// endpoint change rewrites chains through `nft`; here a Service port's endpoints are the
// elements `KEY . SLOT : ADDRESS . PORT` of one map, and its chain is shared by every Service
// port with the same number of endpoints (`pick-ip-4-3`: `numgen random mod 3`), so an
// endpoint change is a few element changes over netlink and the structure only changes when a
// new endpoint count, affinity timeout or setting appears.
//
//   nat-prerouting / nat-output (dstnat)   jump services
//   services      SERVICE_IP . proto . port vmap @service-ips-F      -> a class chain
//                 (local address) proto . nodePort vmap @service-nodeports-F -> a class chain
//   class chains  internal-F (cluster CIDR sources are not masqueraded), internal-local-F,
//                 external-ip-F / external-np-F (masqueraded), external-local-*-F (source kept:
//                 this node's endpoints only; pods and the node itself use every endpoint)
//                 each: KEY vmap @pick-all-FORM-F or @pick-local-FORM-F -> a pick chain
//   pick chains   meta mark set numgen random mod N offset SLOT_BASE(+LOCAL)
//                 [affinity: the slot recorded for the client, refreshed with the timeout;
//                  IPv6: for a hash of the client, the key and the count, see affinityKey]
//                 dnat to KEY . meta mark map @endpoints-FORM-F
//   mark-clear    the packet mark used as the slot register is cleared before routing
//   nat-postrouting  masquerade connections marked (ct mark) and hairpin connections
//   filter-input/forward/output  new connections to a Service key without endpoints: reject
//                 (or drop: a Local policy without local endpoints), instead of a timeout
import type { ChainSpec, SetSpec } from "../../firewall/table-engine.ts";
import { SERVICES } from "../../firewall/names.ts";
import type { NftKeyType } from "../../kernel/index.ts";
import type { Family } from "./endpoints.ts";

export type Form = "ip" | "np";
export type View = "all" | "local";

/** Slot values are tagged so the mark-clear chain knows its own scratch values from anyone's marks. */
export const SLOT_BASE = 0x5c000000;
/** Local endpoints' slots follow this offset (one map holds both views). */
export const LOCAL_OFFSET = 0x10000;
const SLOT_MASK = 0xfffe0000;
/** Pick chains made whatever the state, so endpoint counts up to this never change the structure. */
export const PRESET_COUNTS = 16;

export const FAMILIES: readonly Family[] = [4, 6];
export const FORMS: readonly Form[] = ["ip", "np"];
const P = (f: Family) => (f === 4 ? "ip" : "ip6");
const ADDR = (f: Family): NftKeyType => (f === 4 ? "ipv4_addr" : "ipv6_addr");
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** The key a Service is looked up by, as a rule reads it from the packet. */
const keyExpr = (f: Family, form: Form) => (form === "ip" ? `${P(f)} daddr . meta l4proto . th dport` : "meta l4proto . th dport");
const keyTypes = (f: Family, form: Form): NftKeyType[] => (form === "ip" ? [ADDR(f), "inet_proto", "inet_service"] : ["inet_proto", "inet_service"]);

export const names = {
  serviceIps: SERVICES.serviceIps,
  nodePorts: SERVICES.nodePorts,
  endpoints: SERVICES.endpoints,
  noEndpoints: SERVICES.noEndpoints,
  pick: (f: Family, form: Form, view: View) => `pick-${view}-${form}-${f}`,
  affinity: (f: Family, form: Form) => `affinity-${form}-${f}`,
  hairpin: (f: Family) => `hairpin-${f}`,
  nodePortIps: (f: Family) => `nodeport-ips-${f}`,
  /** A class chain: what a key's traffic gets before its endpoint is chosen. */
  klass: (f: Family, k: Klass) => `${k}-${f}`,
  /** A pick chain: N endpoints, of the local view or not, with an affinity timeout or not. */
  pickChain: (f: Family, form: Form, n: number, view: View, affinity?: number) => `pick-${form}-${f}-${n}${view === "local" ? "-local" : ""}${affinity ? `-a${affinity}` : ""}`,
  reject: "reject-svc",
  drop: "drop-svc",
};

export type Klass = "internal" | "internal-local" | "external-ip" | "external-local-ip" | "external-np" | "external-local-np";

export interface LayoutOptions {
  /** The cluster's pod networks: their sources reach a ClusterIP unmasqueraded. */
  clusterCidr: readonly string[];
  /** NodePorts on these addresses only (the nodeport-ips sets); false: every local address. */
  nodePortIpsSet: boolean;
}

/** Every set of the table. */
export function layoutSets(): Map<string, SetSpec> {
  const sets = new Map<string, SetSpec>();
  for (const f of FAMILIES) {
    sets.set(names.serviceIps(f), { key: keyTypes(f, "ip"), verdict: true, comment: "Service IP . protocol . port: its class chain" });
    sets.set(names.nodePorts(f), { key: keyTypes(f, "np"), verdict: true, comment: "protocol . nodePort: its class chain" });
    for (const form of FORMS) {
      for (const view of ["all", "local"] as const) sets.set(names.pick(f, form, view), { key: keyTypes(f, form), verdict: true, comment: `${view === "all" ? "every" : "this node's"} endpoint: the pick chain of their count` });
      sets.set(names.endpoints(f, form), { key: [...keyTypes(f, form), "mark"], verdict: false, data: [ADDR(f), "inet_service"], comment: "key . slot: endpoint address . port" });
      sets.set(names.noEndpoints(f, form), { key: keyTypes(f, form), verdict: true, comment: "keys without endpoints: reject or drop" });
      sets.set(names.affinity(f, form), f === 4
        ? { key: [ADDR(f), ...keyTypes(f, form)], verdict: false, data: ["mark"], dynamic: { timeout: "3h" }, comment: "client . key: its slot (sessionAffinity ClientIP)" }
        : { key: ["mark"], verdict: false, data: ["mark"], dynamic: { timeout: "3h" }, comment: "hash of client . key . endpoint count: its slot (sessionAffinity ClientIP)" });
    }
    sets.set(names.hairpin(f), { key: [ADDR(f), ADDR(f)], verdict: false, comment: "endpoint . endpoint: a pod reaching itself through a Service (masqueraded)" });
    sets.set(names.nodePortIps(f), { key: [ADDR(f)], verdict: false, comment: "the node's addresses NodePorts answer on (--nodeport-addresses)" });
  }
  return sets;
}

/** A pick chain's name parsed back (the structure makes the chains its elements name). */
export interface PickChain {
  f: Family;
  form: Form;
  n: number;
  view: View;
  affinity?: number;
}

/**
 * What a client's affinity record is keyed by. nft 1.0.6 writes an `update` whose key is more
 * than 16 bytes with too few registers: the data it records overwrites the key's tail, or nft
 * aborts (netlink_linearize.c `dreg < ctx->reg_low`) and takes the whole table with it. IPv4's
 * `client . key` is 16 bytes; IPv6's is 36, so an IPv6 record is keyed by a 32-bit hash of it.
 * The hash's seed holds the pick chain's count and view: when a Service's endpoint count
 * changes its clients choose again (and are recorded again), where IPv4's records of slots
 * that remain are kept and those beyond the count are deleted by the agent, which it cannot
 * do for records it cannot tell apart. Two clients whose hashes collide share one record, so
 * each still keeps one endpoint.
 */
function affinityKey(c: PickChain): { lookup: string[]; record: string } {
  const set = `@${names.affinity(c.f, c.form)}`;
  const client = `${P(c.f)} saddr . ${keyExpr(c.f, c.form)}`;
  if (c.f === 4) return { lookup: [`meta mark set ${client} map ${set}`], record: client };
  const hash = `jhash ${client} mod 4294967295 seed ${hex((AFFINITY_SEED + c.n + (c.view === "local" ? LOCAL_OFFSET : 0)) >>> 0)}`;
  return { lookup: [`meta mark set ${hash}`, `meta mark set meta mark map ${set}`], record: hash };
}

/** The seed of IPv6 clients' record hash, plus the count and view: fixed, so a restarted agent's rules read the records made before. */
const AFFINITY_SEED = 0x6d6e0000;

export function pickRules(c: PickChain): string[] {
  const base = SLOT_BASE + (c.view === "local" ? LOCAL_OFFSET : 0);
  const choose = `meta mark set numgen random mod ${c.n} offset ${hex(base)}`;
  const dnat = `dnat ${P(c.f)} to ${keyExpr(c.f, c.form)} . meta mark map @${names.endpoints(c.f, c.form)}`;
  if (!c.affinity) return [choose, dnat];
  const k = affinityKey(c);
  const range = `${hex(base)}-${hex(base + c.n - 1)}`;
  return [
    choose,
    ...k.lookup,
    // A slot recorded when the Service had more endpoints (or no record, IPv6): choose again, and let it expire.
    `meta mark != ${range} ${choose}`,
    `meta mark ${range} update @${names.affinity(c.f, c.form)} { ${k.record} timeout ${c.affinity}s : meta mark }`,
    dnat,
  ];
}

/** The fixed chains (every chain but the pick chains). */
export function layoutChains(o: LayoutOptions): Map<string, ChainSpec> {
  const chains = new Map<string, ChainSpec>();
  const M = hex(SERVICES.masqueradeCtMark);
  const masq = `ct mark set ct mark | ${M}`;
  const services: string[] = [];
  const check: string[] = [];
  const nodeCheck: string[] = [];
  for (const f of FAMILIES) {
    const p = P(f);
    const cidrs = o.clusterCidr.filter((c) => c.includes(":") === (f === 6));
    const inCluster = cidrs.length ? `${p} saddr { ${cidrs.join(", ")} }` : undefined;
    const loopback = f === 4 ? "127.0.0.0/8" : "::1";
    const local = o.nodePortIpsSet ? `${p} daddr @${names.nodePortIps(f)}` : `fib daddr type local ${p} daddr != ${loopback}`;
    services.push(`${keyExpr(f, "ip")} vmap @${names.serviceIps(f)}`);
    services.push(`${local} ${keyExpr(f, "np")} vmap @${names.nodePorts(f)}`);
    check.push(`${keyExpr(f, "ip")} vmap @${names.noEndpoints(f, "ip")}`);
    // In input every destination is local; 127/8 and ::1 are no NodePort's.
    nodeCheck.push(`${o.nodePortIpsSet ? `${p} daddr @${names.nodePortIps(f)}` : `meta nfproto ipv${f} ${p} daddr != ${loopback}`} ${keyExpr(f, "np")} vmap @${names.noEndpoints(f, "np")}`);
    const pick = (form: Form, view: View) => `${keyExpr(f, form)} vmap @${names.pick(f, form, view)}`;
    chains.set(names.klass(f, "internal"), { rules: [...(inCluster ? [`${inCluster.replace(" saddr ", " saddr != ")} ${masq}`] : []), pick("ip", "all")] });
    chains.set(names.klass(f, "internal-local"), { rules: [pick("ip", "local"), "drop"] });
    for (const form of FORMS) {
      chains.set(names.klass(f, `external-${form}`), { rules: [masq, pick(form, "all")] });
      // Local: the client's address is kept, so only this node's endpoints answer; pods and
      // the node itself are not "external" (kube-proxy's rule), they use every endpoint.
      chains.set(names.klass(f, `external-local-${form}`), {
        rules: [
          ...(inCluster ? [`${inCluster} ${pick(form, "all")}`] : []),
          `fib saddr type local ${masq}`,
          `fib saddr type local ${pick(form, "all")}`,
          pick(form, "local"),
          "drop",
        ],
      });
    }
  }
  chains.set("services", { rules: services });
  chains.set("nat-prerouting", { hook: "type nat hook prerouting priority dstnat; policy accept;", rules: ["jump services"] });
  chains.set("nat-output", { hook: "type nat hook output priority -100; policy accept;", rules: ["jump services"] });
  const clear = `meta mark & ${hex(SLOT_MASK)} == ${hex(SLOT_BASE)} meta mark set 0x00000000`;
  chains.set("mark-clear-prerouting", { hook: "type filter hook prerouting priority dstnat + 1; policy accept;", rules: [clear] });
  chains.set("mark-clear-output", { hook: "type filter hook output priority -99; policy accept;", rules: [clear] });
  chains.set("nat-postrouting", {
    hook: "type nat hook postrouting priority srcnat; policy accept;",
    rules: [`ct mark & ${M} == ${M} masquerade`, ...FAMILIES.map((f) => `ct status dnat ${P(f)} saddr . ${P(f)} daddr @${names.hairpin(f)} masquerade`)],
  });
  chains.set("endpoints-check", { rules: check });
  chains.set("nodeports-check", { rules: nodeCheck });
  // Before policy (filter + 10): a Service without endpoints answers at once, whatever policy says.
  chains.set("filter-forward", { hook: "type filter hook forward priority filter - 10; policy accept;", rules: ["ct state new jump endpoints-check"] });
  chains.set("filter-output", { hook: "type filter hook output priority filter - 10; policy accept;", rules: ["ct state new jump endpoints-check"] });
  chains.set("filter-input", { hook: "type filter hook input priority filter - 10; policy accept;", rules: ["ct state new jump nodeports-check", "ct state new jump endpoints-check"] });
  chains.set(names.reject, { rules: ["reject"] });
  chains.set(names.drop, { rules: ["drop"] });
  return chains;
}
