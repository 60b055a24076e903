// The text of `mncni lab service list` and the Services of `lab status` (the data: src/lab/service-list.ts).
import type { LabService } from "../../lab/service-list.ts";
import { table } from "./render.ts";

/** `80:30001/TCP→7777` (kubectl's PORT(S) with the target). */
const portText = (p: LabService["ports"][number]) => `${p.name ? `${p.name}=` : ""}${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol}→${p.targetPort}`;

const endpointText = (e: LabService["endpoints"][number]) => `${e.address}${e.ready ? "" : e.terminating ? " (terminating)" : " (not ready)"}`;

export function formatLabServices(svcs: LabService[]): string {
  if (svcs.length === 0) return "no Services in this lab (add one with `mncni lab service add NS/NAME --selector k=v --port 80:7777/TCP`)";
  return table(
    ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "OPTIONS", "ENDPOINTS"],
    svcs.map((v) => [
      v.namespace,
      v.name,
      v.type,
      v.headless ? "None" : v.clusterIPs.join(",") || "-",
      v.loadBalancerIPs.join(",") || "-",
      v.ports.map(portText).join(",") || "-",
      [
        v.sessionAffinity === "ClientIP" ? "affinity=ClientIP" : "",
        v.externalTrafficPolicy === "Local" ? "externalTrafficPolicy=Local" : "",
        v.internalTrafficPolicy === "Local" ? "internalTrafficPolicy=Local" : "",
      ].filter(Boolean).join(",") || "-",
      v.endpoints.map(endpointText).join(",") || "<none>",
    ]),
  );
}
