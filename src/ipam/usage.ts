// Addresses used and free per range set of an IPAM config: what the agent's /metrics and
// `mncni ipam show` report.
import { parseIpamConfig } from "./config.ts";
import type { Ip } from "./ip-bigint.ts";
import { describeRangeSet, freeCount, spanContains, spansOf } from "./range.ts";

export interface RangeUse {
  range: string;
  used: number;
  free: number;
}

/** Per range set of an ipam config (as the conflist holds it): reserved and free addresses. */
export function rangeUsage(ipam: unknown, reserved: Ip[]): RangeUse[] {
  return parseIpamConfig(ipam).ranges.map((set) => {
    const spans = spansOf(set);
    const used = reserved.filter((ip) => spans.some((s) => spanContains(s, ip)));
    return { range: describeRangeSet(set), used: used.length, free: Number(freeCount(set, used)) };
  });
}
