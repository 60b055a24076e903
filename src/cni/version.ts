// Result conversion between spec versions. mncni keeps every result in the 1.x shape and
// converts only at the edge: when printing (toWire) and when reading prevResult (fromWire).
import { CniError, ErrorCode } from "./errors.ts";
import { SUPPORTED_VERSIONS, type CniVersion, type DNS, type IPConfig, type Interface, type Result, type Route } from "./types.ts";

export { CURRENT_VERSION } from "./types.ts";

export function isSupported(v: unknown): v is CniVersion {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function unsupportedVersion(v: unknown): CniError {
  return new CniError(
    ErrorCode.IncompatibleVersion,
    `incompatible CNI versions: config is "${String(v)}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    `supported versions: ${SUPPORTED_VERSIONS.join(", ")}`,
  );
}

const isV6 = (addr: string) => addr.includes(":");

/** Legacy 0.1.0/0.2.0 per-family block. */
interface LegacyIP {
  ip: string;
  gateway?: string;
  routes?: { dst: string; gw?: string }[];
}

type Obj = Record<string, unknown>;

function stripUndefined<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function legacyRoute(r: Route) {
  return stripUndefined({ dst: r.dst, gw: r.gw });
}

/** Empty lists are left out, as the reference types do (`omitempty`). */
const nonEmpty = <T>(a: T[] | undefined): T[] | undefined => (a && a.length > 0 ? a : undefined);

/** Encodes a Result for the wire in the requested version. */
export function toWire(result: Result, version: string): Obj {
  if (!isSupported(version)) throw unsupportedVersion(version);
  const dns = result.dns && Object.keys(result.dns).length > 0 ? result.dns : undefined;
  if (compareVersions(version, "1.0.0") >= 0) {
    return stripUndefined({
      cniVersion: version,
      interfaces: nonEmpty(result.interfaces),
      ips: nonEmpty(result.ips),
      routes: nonEmpty(result.routes),
      dns,
    });
  }
  if (compareVersions(version, "0.3.0") >= 0) {
    return stripUndefined({
      cniVersion: version,
      interfaces: nonEmpty(result.interfaces)?.map((i) => stripUndefined({ name: i.name, mac: i.mac, sandbox: i.sandbox })),
      ips: nonEmpty(result.ips)?.map((ip) =>
        stripUndefined({ version: isV6(ip.address) ? "6" : "4", address: ip.address, gateway: ip.gateway, interface: ip.interface }),
      ),
      routes: nonEmpty(result.routes)?.map(legacyRoute),
      dns,
    });
  }
  const block = (v6: boolean): LegacyIP | undefined => {
    const ip = result.ips?.find((i) => isV6(i.address) === v6);
    if (!ip) return undefined;
    const routes = (result.routes ?? []).filter((r) => isV6(r.dst) === v6).map(legacyRoute);
    return stripUndefined({ ip: ip.address, gateway: ip.gateway, routes: routes.length ? routes : undefined });
  };
  return stripUndefined({ cniVersion: version, ip4: block(false), ip6: block(true), dns });
}

function bad(field: string, why: string): CniError {
  return new CniError(ErrorCode.DecodingFailure, `cannot decode ${field}: ${why}`);
}

function str(o: Obj, key: string, field: string, required = false): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw bad(`${field}.${key}`, "missing");
    return undefined;
  }
  if (typeof v !== "string") throw bad(`${field}.${key}`, "not a string");
  return v;
}

function num(o: Obj, key: string, field: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw bad(`${field}.${key}`, "not an integer");
  return v;
}

function arr(o: Obj, key: string, field: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`${field}.${key}`, "not an array");
  return v;
}

function obj(v: unknown, field: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(field, "not an object");
  return v as Obj;
}

function parseRoute(v: unknown, field: string): Route {
  const o = obj(v, field);
  return stripUndefined({
    dst: str(o, "dst", field, true)!,
    gw: str(o, "gw", field),
    mtu: num(o, "mtu", field),
    advmss: num(o, "advmss", field),
    priority: num(o, "priority", field),
    table: num(o, "table", field),
    scope: num(o, "scope", field),
  });
}

function parseDns(v: unknown, field: string): DNS | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, field);
  const strings = (key: string) => {
    const a = arr(o, key, field);
    a.forEach((s, i) => { if (typeof s !== "string") throw bad(`${field}.${key}[${i}]`, "not a string"); });
    return a.length ? (a as string[]) : undefined;
  };
  const dns = stripUndefined({ nameservers: strings("nameservers"), domain: str(o, "domain", field), search: strings("search"), options: strings("options") });
  return Object.keys(dns).length ? dns : undefined;
}

/**
 * Decodes a result of any supported version (a prevResult or a delegated plugin's output).
 * Results before 1.0.0 may omit cniVersion; like libcni, such a result takes the version of
 * the config it came with (`configVersion`).
 */
export function fromWire(v: unknown, field = "prevResult", configVersion?: string): Result {
  const o = obj(v, field);
  const version = o.cniVersion === undefined || o.cniVersion === "" ? configVersion : o.cniVersion;
  if (!isSupported(version)) throw unsupportedVersion(version);
  const dns = parseDns(o.dns, `${field}.dns`);
  if (compareVersions(version, "0.3.0") < 0) {
    const ips: IPConfig[] = [];
    const routes: Route[] = [];
    for (const fam of ["ip4", "ip6"] as const) {
      if (o[fam] === undefined || o[fam] === null) continue;
      const b = obj(o[fam], `${field}.${fam}`);
      ips.push(stripUndefined({ address: str(b, "ip", `${field}.${fam}`, true)!, gateway: str(b, "gateway", `${field}.${fam}`) }));
      arr(b, "routes", `${field}.${fam}`).forEach((r, i) => routes.push(parseRoute(r, `${field}.${fam}.routes[${i}]`)));
    }
    return stripUndefined({ cniVersion: version, ips: ips.length ? ips : undefined, routes: routes.length ? routes : undefined, dns });
  }
  const interfaces: Interface[] = arr(o, "interfaces", field).map((x, i) => {
    const f = `${field}.interfaces[${i}]`;
    const io = obj(x, f);
    return stripUndefined({
      name: str(io, "name", f, true)!,
      mac: str(io, "mac", f),
      mtu: num(io, "mtu", f),
      sandbox: str(io, "sandbox", f),
      socketPath: str(io, "socketPath", f),
      pciID: str(io, "pciID", f),
    });
  });
  const ips: IPConfig[] = arr(o, "ips", field).map((x, i) => {
    const f = `${field}.ips[${i}]`;
    const io = obj(x, f);
    const iface = num(io, "interface", f);
    if (iface !== undefined && (iface < 0 || iface >= interfaces.length)) throw bad(`${f}.interface`, `index ${iface} out of range`);
    return stripUndefined({ address: str(io, "address", f, true)!, gateway: str(io, "gateway", f), interface: iface });
  });
  const routes = arr(o, "routes", field).map((r, i) => parseRoute(r, `${field}.routes[${i}]`));
  return stripUndefined({
    cniVersion: version,
    interfaces: interfaces.length ? interfaces : undefined,
    ips: ips.length ? ips : undefined,
    routes: routes.length ? routes : undefined,
    dns,
  });
}
