// `mncni lab inspect | explain | trace`: the insight commands against a lab node, with the
// lab's directories and namespaces (the work is in src/obs/, as for a real node).
import { EXTERNAL, manifestsDir, nodePaths, ns } from "../lab/topology.ts";
import { readClusterState } from "../obs/policy-view.ts";
import { addrOf } from "../net/ip.ts";
import { hostVethName } from "../plugin/hostveth.ts";
import type { Endpoint, Place } from "../obs/explain.ts";
import type { ProbeProto } from "../obs/probe.ts";
import { EXPLAIN_FLAGS, pickAddr, runExplain } from "./explain.ts";
import { requireState, type LabState } from "../lab/state.ts";
import { collectAttachments } from "../obs/attachments.ts";
import { nodeView, type NodeView } from "../cni/node-view.ts";
import { type CommandSpec, type FlagTable } from "./flags.ts";
import { printInspect } from "./inspect.ts";
import { JSON_OUT, NAME, parse } from "./lab-common.ts";
import { runTrace } from "./trace.ts";

function labNodeView(s: LabState, node: string): NodeView {
  if (!s.nodes.some((n) => n.name === node)) throw new Error(`cannot find node "${node}" in lab "${s.name}": nodes are ${s.nodes.map((n) => n.name).join(", ")}`);
  const p = nodePaths(s.name, node);
  return nodeView({ name: node, netns: `/run/netns/${ns.node(s.name, node)}`, confDir: p.confDir, cacheDir: p.cacheDir, logFile: p.cniLog });
}

const INSPECT = {
  name: "mncni lab inspect",
  args: "<node>[/<pod>]",
  summary: "How a lab node's pods are wired (as `mncni inspect` on that node); with /<pod>, that pod in full. Exit 1 when problems are found.",
  flags: { name: NAME, json: JSON_OUT },
  positionals: { min: 1, max: 1, names: ["node or node/pod"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdInspect(argv: string[]): Promise<number> {
  const p = parse(INSPECT, argv);
  if (typeof p === "number") return p;
  const [node, pod] = p.positionals[0]!.split("/", 2);
  const s = requireState(p.flags.name);
  // The cluster state the lab's agents read: their manifests directory.
  const n = collectAttachments(labNodeView(s, node!), await labCluster(s));
  // The lab names pods "<node>-<pod>" in the Kubernetes sense.
  return printInspect(n, pod === undefined ? undefined : `${node}-${pod}`, p.flags.json);
}

const TRACE = {
  name: "mncni lab trace",
  args: "<node>",
  summary: "The CNI calls of a lab node (as `mncni trace` on that node).",
  flags: {
    name: NAME,
    json: JSON_OUT,
    follow: { type: "boolean", short: "f", help: "keep printing calls as they are made (Ctrl-C ends)" },
    last: { type: "int", value: "N", default: 50, min: 0, help: "calls shown from before" },
  },
  positionals: { min: 1, max: 1, names: ["node"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdTrace(argv: string[]): Promise<number> {
  const p = parse(TRACE, argv);
  if (typeof p === "number") return p;
  const v = labNodeView(requireState(p.flags.name), p.positionals[0]!);
  return runTrace(v.logFile, { follow: p.flags.follow, json: p.flags.json, last: p.flags.last });
}

/** The cluster state the lab's agents read (their manifests directory); none when it cannot be read. */
async function labCluster(s: LabState) {
  try {
    return await readClusterState(`dir:${manifestsDir(s.name)}`);
  } catch {
    // A lab without manifests (static wiring): no policy to name, as on a node without --source.
    return undefined;
  }
}

/** Every namespace of the lab a packet can be in (the switch only bridges: left out). */
function labPlaces(s: LabState): Place[] {
  const at = (n: string) => `/run/netns/${n}`;
  return [
    ...s.nodes.map((n) => ({ name: n.name, netns: at(n.ns), kind: "node" as const })),
    ...s.nodes.flatMap((n) => {
      const network = labNodeView(s, n.name).network;
      return n.pods.map((p) => ({ name: `${n.name}/${p.name}`, netns: at(p.ns), kind: "pod" as const, node: n.name, hostVeth: hostVethName(network, p.containerId, p.ifname) }));
    }),
    { name: "rtr", netns: at(ns.router(s.name)), kind: "router" as const },
    { name: "ext", netns: at(ns.external(s.name)), kind: "external" as const },
  ];
}

/** node1/pod2, node1, ext, or an address of one of them. */
function labEndpoint(s: LabState, places: Place[], what: string, v6 = false): Endpoint {
  const place = places.find((p) => p.name === what);
  if (place) {
    if (place.kind === "pod") {
      const [node, pod] = what.split("/");
      const ips = s.nodes.find((n) => n.name === node)!.pods.find((p) => p.name === pod)!.ips;
      return { place, ip: pickAddr(ips, v6) };
    }
    // A node's IPv6 source: the kernel's choice (the lab records its IPv4 address only).
    if (place.kind === "node") return { place, ip: v6 ? "" : s.nodes.find((n) => n.name === what)!.address };
    if (place.kind === "external") return { place, ip: EXTERNAL.host };
    return { place, ip: "" };
  }
  for (const n of s.nodes) {
    if (n.address === what) return { place: places.find((p) => p.name === n.name)!, ip: what };
    for (const p of n.pods) if (p.ips.some((i) => addrOf(i) === what)) return { place: places.find((x) => x.name === `${n.name}/${p.name}`)!, ip: what };
  }
  if (what === EXTERNAL.host) return { place: places.find((p) => p.kind === "external")!, ip: what };
  throw new Error(`cannot find "${what}" in lab "${s.name}": not a node, node/pod, ext or one of their addresses`);
}

const EXPLAIN = {
  name: "mncni lab explain",
  args: "<src> <dst>",
  summary: "The path of one packet between lab endpoints (node1/pod1, node2, ext, or an address), hop by hop across namespaces, confirmed by a probe traced by nftables (the default here). Exit 1 when it is not delivered or the probe disagrees.",
  flags: { name: NAME, ...EXPLAIN_FLAGS, "no-probe": { type: "boolean", help: "only compute the path, send nothing" } },
  positionals: { min: 2, max: 2, names: ["source", "destination"] },
} satisfies CommandSpec<FlagTable>;

export async function cmdExplain(argv: string[]): Promise<number> {
  const p = parse(EXPLAIN, argv);
  if (typeof p === "number") return p;
  const s = requireState(p.flags.name);
  const places = labPlaces(s);
  const src = labEndpoint(s, places, p.positionals[0]!, p.flags.ipv6);
  const dst = labEndpoint(s, places, p.positionals[1]!, p.flags.ipv6);
  const cluster = await labCluster(s);
  return runExplain(places, src, dst.ip, { proto: p.flags.proto as ProbeProto, port: p.flags.port, probe: !p.flags["no-probe"], json: p.flags.json, spoofSrc: p.flags["spoof-src"], ...(cluster ? { cluster } : {}) });
}
