// The text of `mncni ipam show` (the data: src/obs/ipam-show.ts).
import type { IpamReport } from "../../obs/ipam-show.ts";
import { bold, red, table } from "./render.ts";

export function formatIpamReport(r: IpamReport): string {
  return [
    `${bold(r.node)}: IPAM state in ${r.dataDir}`,
    table(["RANGE", "USED", "FREE"], r.ranges.map((u) => [u.range, String(u.used), String(u.free)])),
    "",
    r.leaks.length ? red(`leaks (reserved, no attachment): ${r.leaks.length}`) : "leaks (reserved, no attachment): none",
    ...r.leaks.map((l) => `  ${l.ip}  ${l.containerId} ${l.ifname}`),
    r.unreserved.length ? red(`attachments without a reservation: ${r.unreserved.length}`) : "attachments without a reservation: none",
    ...r.unreserved.map((u) => `  ${u.containerId} ${u.ifname} ${u.ips.join(",") || "(no result)"}`),
    ...r.problems.map((p) => red(`problem: ${p}`)),
  ].join("\n");
}
