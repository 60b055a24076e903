// Addresses the runtime asks for, from host-local's three sources, in host-local's order:
// CNI_ARGS "IP" (comma separated), args.cni.ips, then the `ips` capability
// (runtimeConfig.ips). host-local takes all of them together; so do we.
import { CniError, ErrorCode, invalidConfig } from "../cni/errors.ts";
import type { CniEnv, NetConf } from "../cni/types.ts";
import { formatIp, parseIpOrCidr } from "./ip-bigint.ts";

function fromList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidConfig(field, "must be an array of IP addresses");
  return v.map((s, i) => {
    const ip = typeof s === "string" ? parseIpOrCidr(s.trim()) : undefined;
    if (!ip) throw invalidConfig(`${field}[${i}]`, `${JSON.stringify(s)} is not an IP address`);
    return formatIp(ip);
  });
}

/** Canonical bare addresses, deduplicated; undefined when nothing was requested. */
export function requestedIpsFrom(conf: NetConf, env: Pick<CniEnv, "args">): string[] | undefined {
  const out: string[] = [];
  const arg = env.args.IP;
  if (arg !== undefined && arg.trim() !== "") {
    for (const item of arg.split(",")) {
      const ip = parseIpOrCidr(item.trim());
      if (!ip) throw new CniError(ErrorCode.InvalidEnv, `invalid env variable CNI_ARGS "IP=${arg}": "${item}" is not an IP address`);
      out.push(formatIp(ip));
    }
  }
  const cniArgs = conf.args?.cni;
  if (cniArgs !== undefined && cniArgs !== null) {
    if (typeof cniArgs !== "object" || Array.isArray(cniArgs)) throw invalidConfig("args.cni", "must be an object");
    out.push(...fromList((cniArgs as Record<string, unknown>).ips, "args.cni.ips"));
  }
  out.push(...fromList(conf.runtimeConfig?.ips, "runtimeConfig.ips"));
  return out.length > 0 ? [...new Set(out)] : undefined;
}
