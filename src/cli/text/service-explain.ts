// The Service part of `mncni lab explain SRC svc/NS/NAME` (the data: src/lab/service-explain.ts).
import type { ServiceTranslation } from "../../lab/service-explain.ts";
import { bold, green, red, yellow } from "./render.ts";

const hp = (ip: string, port: number) => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

export function formatServiceTranslation(t: ServiceTranslation): string {
  const lines = [
    `${bold(`Service ${t.service}`)} (${t.type}${t.sessionAffinity === "ClientIP" ? ", sessionAffinity ClientIP" : ""}${t.internalTrafficPolicy === "Local" ? ", internalTrafficPolicy Local" : ""}): ${hp(t.frontend.ip, t.frontend.port)}/${t.frontend.protocol}`,
    `  endpoints the proxy may pick for this client: ${t.candidates.map((c) => `${hp(c.address, c.port)}${c.pod ? ` (${c.pod} on ${c.node})` : ""}${c.terminating ? " terminating" : ""}`).join(", ") || red("none: rejected")}`,
  ];
  if (t.chosen) {
    lines.push(`  ${green("translation chosen")}: ${hp(t.frontend.ip, t.frontend.port)} -> ${hp(t.chosen.address, t.chosen.port)}${t.chosen.pod ? ` (${t.chosen.pod} on ${t.chosen.node})` : ""}, by a real connection; the backend saw the client as ${t.chosen.seen}${t.chosen.nat ? yellow(" (masqueraded: the client is its own backend, hairpin)") : " (address kept)"}`);
  }
  if (t.note) lines.push(`  ${t.chosen ? red(t.note) : yellow(t.note)}`);
  return lines.join("\n");
}
