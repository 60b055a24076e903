// `mncni explain SRC DST`: the path of a packet on this node, hop by hop (src/obs/explain.ts).
// SRC and DST: a pod (namespace/name), an IP, or "node" (this node's namespace).
import { sayError, sayJson, sayRendered } from "./output.ts";
import { collectAttachments } from "../obs/attachments.ts";
import type { Endpoint, Explanation } from "../obs/explain.ts";
import { explainAgrees, explainPacket } from "../obs/explain-packet.ts";
import { nodeEndpoint, nodePlaces } from "../obs/explain-places.ts";
import { formatExplanation } from "./text/explain.ts";
import { readClusterState } from "../obs/policy-view.ts";
import type { ProbeProto } from "../obs/probe.ts";
import { parseOrExit, UsageError, type CommandSpec } from "./flags.ts";
import { NODE_FLAGS, viewFromFlags } from "./node-flags.ts";

export const EXPLAIN_FLAGS = {
  proto: { type: "string", value: "PROTO", default: "udp", choices: ["tcp", "udp", "icmp"], help: "the packet's protocol" },
  port: { type: "int", value: "N", default: 7777, min: 1, max: 65535, help: "destination port (tcp, udp)" },
  ipv6: { type: "boolean", short: "6", help: "between the endpoints' IPv6 addresses (a pod named by name; an address given is used as it is)" },
  "spoof-src": { type: "string", value: "IP", help: "send from this source address instead of SRC's own (a spoofing pod)" },
  json: { type: "boolean", help: "machine-readable output" },
} as const;

const FLAGS = {
  ...NODE_FLAGS,
  ...EXPLAIN_FLAGS,
  probe: { type: "boolean", help: "confirm with a real packet traced by nftables" },
  source: { type: "string", value: "SPEC", help: "the cluster source the agent reads (as its --source): the policy verdict the evaluator expects, checked against the probe" },
} as const;

const EXPLAIN = {
  name: "mncni explain",
  args: "<src> <dst>",
  summary: "The path of one packet from SRC to DST on this node: in each namespace the route the kernel picks, the neighbour or FDB entry, the device, where it goes next, masquerade, anti-spoofing. --probe sends a real packet traced by nftables and reports any difference. Exit 0 when the path was computed and the probe agrees with it (whatever the verdict: a dropped packet too), 1 when they disagree, 2 when it could not run.",
  flags: FLAGS,
  positionals: { min: 2, max: 2, names: ["source (pod namespace/name, IP or node)", "destination (pod namespace/name, IP or node)"] },
} satisfies CommandSpec<typeof FLAGS>;

export async function explainCommand(argv: string[]): Promise<number> {
  return couldNotRun(EXPLAIN.name, () => explainRun(argv));
}

async function explainRun(argv: string[]): Promise<number> {
  const p = parseOrExit(EXPLAIN, argv);
  if (typeof p === "number") return p;
  const v = viewFromFlags(p.flags);
  const at = nodePlaces(v, collectAttachments(v));
  const resolve = (what: string, role: string): Endpoint => {
    const e = nodeEndpoint(at, what, p.flags.ipv6);
    if (!e) throw new UsageError(EXPLAIN.name, `cannot find ${role} "${what}": not a pod on this node, an IP or "node"`);
    return e;
  };
  const src = resolve(p.positionals[0]!, "source");
  const dst = resolve(p.positionals[1]!, "destination");
  if (!src.place) src.place = at.node;
  const cluster = p.flags.source ? await readClusterState(p.flags.source, v.fastPath ? { services: true } : {}) : undefined;
  const ex = explainPacket(at.places, src, dst.ip, { proto: p.flags.proto as ProbeProto, port: p.flags.port, probe: p.flags.probe, spoofSrc: p.flags["spoof-src"], ...(cluster ? { cluster } : {}), nodes: [v] });
  return renderExplanation(ex, p.flags.json);
}

/** Prints an explanation as text or JSON; the exit status (shared with `mncni lab explain`): 0 agree, 1 mismatch. */
export function renderExplanation(ex: Explanation, asJson: boolean): number {
  if (asJson) sayJson(ex);
  else sayRendered(ex, formatExplanation);
  return explainAgrees(ex) ? 0 : 1;
}

/**
 * explain's exit status when it cannot run (an endpoint not found, a namespace that cannot be
 * entered, a cluster source that cannot be read): 2, so that 1 keeps meaning a mismatch. Usage
 * errors go to the dispatcher (2 as well).
 */
export async function couldNotRun(cmd: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    sayError(`${cmd}: ${(e as Error).message}`);
    return 2;
  }
}
