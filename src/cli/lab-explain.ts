// `mncni lab explain SRC DST`: the path of a packet between lab endpoints, across the lab's
// namespaces (places and endpoints: src/lab/places.ts; the work: src/obs/explain-packet.ts).
import { requireState } from "../lab/state.ts";
import { labCluster, labEndpoint, labPlaces } from "../lab/places.ts";
import { explainPacket } from "../obs/explain-packet.ts";
import type { ProbeProto } from "../obs/probe.ts";
import { couldNotRun, EXPLAIN_FLAGS, renderExplanation } from "./explain.ts";
import type { CommandSpec, FlagTable } from "./flags.ts";
import { NAME, parse } from "./lab-common.ts";

const EXPLAIN = {
  name: "mncni lab explain",
  args: "<src> <dst>",
  summary: "The path of one packet between lab endpoints (node1/pod1, node2, ext, or an address), hop by hop across namespaces, confirmed by a probe traced by nftables (the default here). A destination outside the lab is followed as far as the lab routes it. Exit 0 when the computed path and the probe agree (whatever the verdict), 1 when they disagree, 2 when it could not run.",
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
  const dst = labEndpoint(s, places, p.positionals[1]!, p.flags.ipv6, { outside: true });
  const cluster = await labCluster(s);
  const ex = explainPacket(places, src, dst.ip, { proto: p.flags.proto as ProbeProto, port: p.flags.port, probe: !p.flags["no-probe"], spoofSrc: p.flags["spoof-src"], ...(cluster ? { cluster } : {}) });
  return renderExplanation(ex, p.flags.json);
}
