// `mncni lab explain SRC DST`: the path of a packet between lab endpoints, across the lab's
// namespaces (places and endpoints: src/lab/places.ts; the work: src/obs/explain-packet.ts).
import { requireState, type LabState } from "../lab/state.ts";
import { labCluster, labEndpoint, labNodeView, labPlaces } from "../lab/places.ts";
import { explainAgrees, explainPacket } from "../obs/explain-packet.ts";
import type { Endpoint, Place } from "../obs/explain.ts";
import { serviceRef, translateService } from "../lab/service-explain.ts";
import { formatServiceTranslation } from "./text/service-explain.ts";
import { formatExplanation } from "./text/explain.ts";
import { sayJson, sayRendered } from "./output.ts";
import { UsageError } from "./flags.ts";
import type { ProbeProto } from "../obs/probe.ts";
import { couldNotRun, EXPLAIN_FLAGS, renderExplanation } from "./explain.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, parse } from "./lab-common.ts";

const EXPLAIN = {
  name: "mncni lab explain",
  args: "<src> <dst>",
  summary: "The path of one packet between lab endpoints (node1/pod1, node2, ext, or an address), hop by hop across namespaces, confirmed by a probe traced by nftables (the default here). A destination outside the lab is followed as far as the lab routes it. To svc/NS/NAME: the Service translation a real connection gets (which backend, NAT or not), then the path to that backend. Exit 0 when the computed path and the probe agree (whatever the verdict), 1 when they disagree, 2 when it could not run.",
  flags: { name: NAME, ...EXPLAIN_FLAGS, "no-probe": { type: "boolean", help: "only compute the path, send nothing" } },
  positionals: { min: 2, max: 2, names: ["source", "destination"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdExplain(argv: string[]): Promise<number> {
  return couldNotRun(EXPLAIN.name, () => explainRun(argv));
}

async function explainRun(argv: string[]): Promise<number> {
  const p = parse(EXPLAIN, argv);
  if (typeof p === "number") return p;
  const s = requireState(p.flags.name);
  const places = labPlaces(s);
  const src = labEndpoint(s, places, p.positionals[0]!, p.flags.ipv6);
  if (p.positionals[1]!.startsWith("svc/")) return explainService(s, places, src, p.positionals[1]!, p.flags);
  const dst = labEndpoint(s, places, p.positionals[1]!, p.flags.ipv6, { outside: true });
  const cluster = await labCluster(s);
  const ex = explainPacket(places, src, dst.ip, { proto: p.flags.proto as ProbeProto, port: p.flags.port, probe: !p.flags["no-probe"], spoofSrc: p.flags["spoof-src"], ...(cluster ? { cluster } : {}), nodes: s.nodes.map((n) => labNodeView(s, n.name)) });
  return renderExplanation(ex, p.flags.json);
}

/**
 * SRC to a Service: the translation its connection gets (a real connection, answered by the
 * backend), then the path of a packet to that backend (after the translation, as the node
 * routes it), confirmed by a traced probe.
 */
async function explainService(s: LabState, places: Place[], src: Endpoint, what: string, f: { port: number; json: boolean; "no-probe": boolean; proto: string }): Promise<number> {
  const svc = await serviceRef(s, what);
  if (!svc) throw new UsageError(EXPLAIN.name, `cannot find Service "${what.replace(/^svc\//, "")}" in lab "${s.name}" (see \`mncni lab service list\`)`);
  const from = src.place;
  if (!from?.netns || !src.ip || (from.kind !== "pod" && from.kind !== "node")) throw new UsageError(EXPLAIN.name, "a Service is explained from a pod or a node of the lab");
  const node = s.nodes.find((n) => from.name === n.name || from.name.startsWith(`${n.name}/`));
  // --port names the Service port; explain's default (7777) is not one of most Services' ports.
  const port = svc.ports.some((x) => x.port === f.port) ? f.port : undefined;
  const t = await translateService(s, svc, { netns: from.netns.replace(/^\/run\/netns\//, ""), ip: src.ip, node: node?.name ?? "" }, port);
  const backend = t.chosen ?? t.candidates[0];
  const cluster = await labCluster(s);
  const ex = backend
    ? explainPacket(places, src, backend.address, { proto: t.frontend.protocol === "UDP" ? "udp" : "tcp", port: backend.port, probe: !f["no-probe"], ...(cluster ? { cluster } : {}), nodes: s.nodes.map((n) => labNodeView(s, n.name)) })
    : undefined;
  // As explain: 0 when what happened agrees with what the endpoints say (none: rejected), 1 when not.
  const agrees = t.candidates.length === 0 || ((t.chosen !== undefined ? t.candidates.some((c) => c.address === t.chosen!.address) : t.note?.startsWith("not probed") === true) && (ex ? explainAgrees(ex) : false));
  if (f.json) sayJson({ service: t, path: ex ?? null });
  else sayRendered({ t, ex }, ({ t, ex }) => [formatServiceTranslation(t), ...(ex ? ["", `the path to ${backend!.address} (after the translation):`, formatExplanation(ex)] : [])].join("\n"));
  return agrees ? 0 : 1;
}
