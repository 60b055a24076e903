// The `ipam` section, parsed once: host-local's schema and defaults, validated with errors
// that name the offending field, returned frozen. Unknown fields are ignored like host-local.
import { invalidConfig } from "../cni/errors.ts";
import type { DNS, Route } from "../cni/types.ts";
import { formatIp, ipOf, isV4Mapped, lastOf, networkOf, parseCidr, parseIp, type Ip } from "./ip-bigint.ts";
import { DEFAULT_DATA_DIR } from "../cni/node-view.ts";

/** One range with every default filled in; addresses in canonical text. */
export interface Range {
  subnet: string;
  rangeStart: string;
  rangeEnd: string;
  gateway?: string;
}

/** One address is allocated per range set; its ranges share one family. */
export type RangeSet = Range[];

export interface IpamConfig {
  type: string;
  ranges: RangeSet[];
  routes: Route[];
  dataDir: string;
  resolvConf?: string;
  dns?: DNS;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function optString(o: Obj, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalidConfig(`${field}.${key}`, "must be a string");
  return v;
}

function optAddress(o: Obj, key: string, field: string): Ip | undefined {
  const s = optString(o, key, field);
  if (s === undefined || s === "") return undefined;
  const ip = parseIp(s);
  if (!ip) throw invalidConfig(`${field}.${key}`, `"${s}" is not an IP address`);
  return ip;
}

function parseRange(o: unknown, field: string): Range {
  if (!isObj(o)) throw invalidConfig(field, "must be an object");
  const text = optString(o, "subnet", field);
  if (!text) throw invalidConfig(`${field}.subnet`, "missing");
  const cidr = parseCidr(text);
  if (!cidr) throw invalidConfig(`${field}.subnet`, `"${text}" is not a CIDR`);
  const { ip, prefix } = cidr;
  const family = ip.family;
  const at = (value: bigint) => formatIp(ipOf(family, value));
  if (isV4Mapped(ip)) throw invalidConfig(`${field}.subnet`, `"${text}" is IPv4-mapped IPv6, write the IPv4 subnet instead`);
  // A /31 or /32 (/127, /128) leaves nothing after the network and gateway addresses.
  if (prefix > (family === 4 ? 30 : 126)) throw invalidConfig(`${field}.subnet`, `"${text}" is too small to allocate from`);
  const network = networkOf(ip, prefix);
  if (network !== ip.value) {
    throw invalidConfig(`${field}.subnet`, `"${text}" has host bits set (the network address is ${at(network)})`);
  }
  const last = lastOf(ip, prefix);
  const inSubnet = (key: string, a: Ip | undefined): a is Ip => {
    if (a === undefined) return false;
    if (a.family !== family || a.value < network || a.value > last) {
      throw invalidConfig(`${field}.${key}`, `${formatIp(a)} is not in subnet ${text}`);
    }
    return true;
  };
  const gw = optAddress(o, "gateway", field);
  if (gw && gw.family !== family) throw invalidConfig(`${field}.gateway`, `${formatIp(gw)} is not of the family of subnet ${text}`);
  const startIp = optAddress(o, "rangeStart", field);
  const endIp = optAddress(o, "rangeEnd", field);
  const start = inSubnet("rangeStart", startIp) ? startIp.value : network + 1n;
  const end = inSubnet("rangeEnd", endIp) ? endIp.value : family === 4 ? last - 1n : last;
  if (start > end) throw invalidConfig(`${field}.rangeStart`, `${at(start)} is after rangeEnd ${at(end)}`);
  return {
    subnet: `${at(network)}/${prefix}`,
    rangeStart: at(start),
    rangeEnd: at(end),
    gateway: at(gw ? gw.value : network + 1n),
  };
}

/** [first, last] of a parsed range as numbers, for overlap checks. */
function span(r: Range): { family: number; start: bigint; end: bigint } {
  const s = parseIp(r.rangeStart)!;
  return { family: s.family, start: s.value, end: parseIp(r.rangeEnd)!.value };
}

function overlaps(a: Range, b: Range): boolean {
  const x = span(a);
  const y = span(b);
  return x.family === y.family && x.start <= y.end && y.start <= x.end;
}

function parseRangeSet(v: unknown, field: string): RangeSet {
  if (!Array.isArray(v) || v.length === 0) throw invalidConfig(field, "must be a non-empty array of ranges");
  const set = v.map((r, i) => parseRange(r, `${field}[${i}]`));
  const family = parseIp(set[0].rangeStart)!.family;
  set.forEach((r, i) => {
    if (parseIp(r.rangeStart)!.family !== family) {
      throw invalidConfig(`${field}[${i}].subnet`, `mixes IPv${family === 4 ? 6 : 4} into an IPv${family} range set`);
    }
    for (let j = 0; j < i; j++) {
      if (overlaps(set[j], r)) throw invalidConfig(`${field}[${i}]`, `overlaps ${field}[${j}]`);
    }
  });
  return set;
}

function parseRoute(v: unknown, field: string): Route {
  if (!isObj(v)) throw invalidConfig(field, "must be an object");
  const dst = optString(v, "dst", field);
  if (!dst) throw invalidConfig(`${field}.dst`, "missing");
  if (!parseCidr(dst)) throw invalidConfig(`${field}.dst`, `"${dst}" is not a CIDR`);
  const route: Route = { dst };
  const gw = optAddress(v, "gw", field);
  if (gw) route.gw = v.gw as string;
  for (const key of ["mtu", "advmss", "priority", "table", "scope"] as const) {
    const n = v[key];
    if (n === undefined || n === null) continue;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw invalidConfig(`${field}.${key}`, "must be a non-negative integer");
    route[key] = n;
  }
  return route;
}

function parseStrings(o: Obj, key: string, field: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw invalidConfig(`${field}.${key}`, "must be an array of strings");
  return v as string[];
}

function parseDns(v: unknown, field: string): DNS {
  if (!isObj(v)) throw invalidConfig(field, "must be an object");
  const dns: DNS = {};
  const nameservers = parseStrings(v, "nameservers", field);
  nameservers?.forEach((s, i) => {
    if (!parseIp(s)) throw invalidConfig(`${field}.nameservers[${i}]`, `"${s}" is not an IP address`);
  });
  if (nameservers) dns.nameservers = nameservers;
  const domain = optString(v, "domain", field);
  if (domain) dns.domain = domain;
  const search = parseStrings(v, "search", field);
  if (search) dns.search = search;
  const options = parseStrings(v, "options", field);
  if (options) dns.options = options;
  return dns;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/** Parses host-local's `ipam` section; throws CniError 7 naming the field. */
export function parseIpamConfig(ipam: unknown, field = "ipam"): IpamConfig {
  if (!isObj(ipam)) throw invalidConfig(field, "missing or not an object");
  const type = optString(ipam, "type", field);
  if (!type) throw invalidConfig(`${field}.type`, "missing");

  // Each range set with the field it came from, so errors name what the user wrote.
  const sets: { field: string; set: RangeSet }[] = [];
  // The legacy single range (host-local's embedded Range) becomes range set 0.
  if (ipam.subnet !== undefined && ipam.subnet !== null && ipam.subnet !== "") {
    sets.push({ field, set: [parseRange(ipam, field)] });
  }
  const rawRanges = ipam.ranges;
  if (rawRanges !== undefined && rawRanges !== null) {
    if (!Array.isArray(rawRanges)) throw invalidConfig(`${field}.ranges`, "must be an array of range sets");
    rawRanges.forEach((s, i) => sets.push({ field: `${field}.ranges[${i}]`, set: parseRangeSet(s, `${field}.ranges[${i}]`) }));
  }
  if (sets.length === 0) throw invalidConfig(`${field}.ranges`, "no IP ranges specified");
  sets.forEach((a, i) => {
    for (const b of sets.slice(0, i)) {
      if (a.set.some((x) => b.set.some((y) => overlaps(x, y)))) throw invalidConfig(a.field, `overlaps ${b.field}`);
    }
  });
  const ranges = sets.map((s) => s.set);

  const rawRoutes = ipam.routes;
  if (rawRoutes !== undefined && rawRoutes !== null && !Array.isArray(rawRoutes)) throw invalidConfig(`${field}.routes`, "must be an array");
  const routes = ((rawRoutes as unknown[] | undefined) ?? []).map((r, i) => parseRoute(r, `${field}.routes[${i}]`));

  const dataDir = optString(ipam, "dataDir", field) || DEFAULT_DATA_DIR;
  if (!dataDir.startsWith("/")) throw invalidConfig(`${field}.dataDir`, `"${dataDir}" is not an absolute path`);

  const conf: IpamConfig = { type, ranges, routes, dataDir };
  const resolvConf = optString(ipam, "resolvConf", field);
  if (resolvConf) conf.resolvConf = resolvConf;
  if (ipam.dns !== undefined && ipam.dns !== null) conf.dns = parseDns(ipam.dns, `${field}.dns`);
  return deepFreeze(conf);
}
