// `mncni explain SRC DST`: the path of a packet on this node, hop by hop (src/obs/explain.ts).
// SRC and DST: a pod (namespace/name), an IP, or "node" (this node's namespace).
import { say, sayJson } from "./output.ts";
import { collectAttachments, findAttachment } from "../obs/attachments.ts";
import { computePath, type Endpoint, type Place } from "../obs/explain.ts";
import { formatExplanation } from "../obs/explain-format.ts";
import { probePath } from "../obs/explain-probe.ts";
import { expectPolicy, policyAt, policyMismatches, tracedPolicy } from "../obs/explain-policy.ts";
import type { ClusterState } from "../cluster/types.ts";
import { readClusterState } from "../obs/policy-view.ts";
import type { ProbeProto } from "../obs/probe.ts";
import { addrOf } from "../net/ip.ts";
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
  summary: "The path of one packet from SRC to DST on this node: in each namespace the route the kernel picks, the neighbour or FDB entry, the device, where it goes next, masquerade, anti-spoofing. --probe sends a real packet traced by nftables and reports any difference. Exit 1 when the packet is not delivered or the probe disagrees.",
  flags: FLAGS,
  positionals: { min: 2, max: 2, names: ["source (pod namespace/name, IP or node)", "destination (pod namespace/name, IP or node)"] },
} satisfies CommandSpec<typeof FLAGS>;

export async function explainCommand(argv: string[]): Promise<number> {
  const p = parseOrExit(EXPLAIN, argv);
  if (typeof p === "number") return p;
  const v = viewFromFlags(p.flags);
  const n = collectAttachments(v);
  const node: Place = { name: v.name, kind: "node", ...(v.netns ? { netns: v.netns } : {}) };
  const pods = n.attachments.filter((a) => a.netns && a.podAddresses.length);
  const places: Place[] = [node, ...pods.map((a) => ({ name: a.podName ? `${a.podNamespace}/${a.podName}` : a.containerId.slice(0, 12), netns: a.netns!, kind: "pod" as const, node: v.name, ...(a.hostVeth ? { hostVeth: a.hostVeth.name } : {}) }))];
  const resolve = (what: string, role: string): Endpoint => {
    if (what === "node") return { place: node, ip: "" };
    const a = findAttachment(pods, what);
    if (a) return { place: places.find((pl) => pl.netns === a.netns)!, ip: pickAddr(a.podAddresses, p.flags.ipv6) };
    if (/^[0-9a-f.:]+$/i.test(what)) return { ip: what };
    throw new UsageError(EXPLAIN.name, `cannot find ${role} "${what}": not a pod on this node, an IP or "node"`);
  };
  const src = resolve(p.positionals[0]!, "source");
  const dst = resolve(p.positionals[1]!, "destination");
  if (!src.place) src.place = node;
  const cluster = p.flags.source ? await readClusterState(p.flags.source) : undefined;
  return runExplain(places, src, dst.ip, { proto: p.flags.proto as ProbeProto, port: p.flags.port, probe: p.flags.probe, json: p.flags.json, spoofSrc: p.flags["spoof-src"], ...(cluster ? { cluster } : {}) });
}

/** A pod's address of the family asked for (the other one when it has none: the error then names it). */
export const pickAddr = (addrs: string[], v6: boolean): string => addrOf(addrs.find((x) => x.includes(":") === v6) ?? addrs[0]!);

/** Shared with `mncni lab explain`. */
export function runExplain(places: Place[], src: Endpoint, dst: string, o: { proto: ProbeProto; port: number; probe: boolean; json: boolean; spoofSrc?: string; cluster?: ClusterState }): number {
  const from: Endpoint = o.spoofSrc ? { ...src, ip: o.spoofSrc } : src;
  // A node as the source has no address until the kernel picks one: the evaluator needs it.
  const expected = o.cluster && from.ip ? expectPolicy(o.cluster, from.ip, dst, o.proto, o.port) : undefined;
  const ex = computePath(places, from, dst, o.proto, o.port, expected ? policyAt(expected) : undefined);
  if (expected) ex.policy = { expected };
  if (o.probe) {
    ex.probe = probePath(places, ex, o.spoofSrc !== undefined);
    const traced = tracedPolicy(ex.probe.places);
    if (traced) ex.policy = { ...ex.policy, traced };
    ex.probe.mismatches.push(...policyMismatches(expected, traced, ex.probe.places.some((t) => t.verdict === "dropped")));
  }
  if (o.json) sayJson(ex);
  else say(formatExplanation(ex));
  const ok = ex.probe ? ex.probe.mismatches.length === 0 : true;
  // Leaving the namespaces this command sees (another node, on a node) is a path, not a failure.
  return ok && (ex.outcome === "delivered" || ex.outcome === "leaves") ? 0 : 1;
}
