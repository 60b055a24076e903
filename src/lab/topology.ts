// Names, addresses and directories of a lab: the one place that knows the address plan.
//
//   <name>-ext 203.0.113.10 ── <name>-rtr 203.0.113.1 / 10.224.0.1 ── <name>-sw (bridge)
//                                                                    ├── <name>-node1 10.224.0.11
//                                                                    └── <name>-node2 10.224.0.12 ...
// The router has no route to pod CIDRs: pods reach the external host only through the
// masquerade of their node. A dual-stack lab (--ipv6) adds the IPv6 plan alongside:
// underlay fd00:224::/64 (router ::1, node N fd00:224::(10+N)), ext 2001:db8::10.
// A lab of several segments (--segments S) puts the nodes on S underlay subnets, one switch
// namespace each (<name>-sw, <name>-sw1, ...), all joined by the router: segment k is
// 10.224.k.0/24 (router 10.224.k.1, node N 10.224.k.(10+N)) and fd00:224:0:k::/64; node N is
// on segment (N-1) mod S. Nodes of one segment reach each other directly, the others only
// through the router (which has no route to pod CIDRs): host-gw cannot cross, VXLAN must.
import { join } from "node:path";
import { type Family } from "../net/ip.ts";

/** Where labs live unless MNCNI_LAB_ROOT says otherwise (`lab list` looks here too). */
export const DEFAULT_LAB_ROOT = "/run/mncni-lab";
export const LAB_ROOT = process.env.MNCNI_LAB_ROOT || DEFAULT_LAB_ROOT;
/** The lab every command means without --name: $MNCNI_LAB, else mnlab. */
export const DEFAULT_LAB = process.env.MNCNI_LAB || "mnlab";
export const ECHO_PORT = 7777;

const UNDERLAY = { cidr: "10.224.0.0/16", prefix: 16, router: "10.224.0.1" };
export const EXTERNAL = { host: "203.0.113.10", router: "203.0.113.1", prefix: 24 };
const UNDERLAY6 = { cidr: "fd00:224::/64", prefix: 64, router: "fd00:224::1" };
export const EXTERNAL6 = { host: "2001:db8::10", router: "2001:db8::1", prefix: 64 };
/** The IPv6 cluster CIDR of a dual-stack lab and the size of each node's share of it. */
export const CLUSTER_CIDR6 = "fd00:10:244::/56";
export const NODE_CIDR_SIZE6 = 64;

/** The underlay and external host plan of one address family. */
export function plan(family: Family) {
  return family === 4 ? { underlay: UNDERLAY, external: EXTERNAL } : { underlay: UNDERLAY6, external: EXTERNAL6 };
}

export function labDir(lab: string): string {
  return join(LAB_ROOT, lab);
}

function nodeDir(lab: string, node: string): string {
  return join(labDir(lab), "nodes", node);
}

export interface NodePaths {
  dir: string;
  confDir: string;
  binDir: string;
  ipamDir: string;
  cacheDir: string;
  cniLog: string;
  agentLog: string;
  agentPid: string;
  cniSocket: string;
  /** The node's containerd (`lab up --runtime containerd`): config, root, state, socket, log. */
  containerdDir: string;
}

export function nodePaths(lab: string, node: string): NodePaths {
  const dir = nodeDir(lab, node);
  return {
    dir,
    confDir: join(dir, "net.d"),
    binDir: join(dir, "bin"),
    ipamDir: join(dir, "ipam"),
    cacheDir: join(dir, "results"),
    cniLog: join(dir, "cni.log"),
    agentLog: join(dir, "agent.log"),
    agentPid: join(dir, "agent.pid"),
    cniSocket: join(dir, "cni.sock"),
    containerdDir: join(dir, "containerd"),
  };
}

export const manifestsDir = (lab: string) => join(labDir(lab), "manifests");
/** The pause image of a containerd lab, built once for its nodes. */
export const pauseImageDir = (lab: string) => join(labDir(lab), "pause-image");
export const stateFile = (lab: string) => join(labDir(lab), "state.json");

/** The underlay subnet of one segment and family: the one /16 (/64) of a single-segment lab, else a /24 (/64) each. */
export function segmentPlan(segment: number, segments: number, family: Family): { cidr: string; prefix: number; router: string } {
  if (family === 6) return segment === 0 ? UNDERLAY6 : { cidr: `fd00:224:0:${segment}::/64`, prefix: 64, router: `fd00:224:0:${segment}::1` };
  return segments <= 1 ? UNDERLAY : { cidr: `10.224.${segment}.0/24`, prefix: 24, router: `10.224.${segment}.1` };
}

/** The segment of node index n (1-based): round robin, so consecutive nodes land on different segments. */
export const segmentOf = (index: number, segments: number): number => (index - 1) % Math.max(1, segments);

export const ns = {
  /** The switch of segment k (the first keeps the single-segment name). */
  switch: (lab: string, segment = 0) => (segment === 0 ? `${lab}-sw` : `${lab}-sw${segment}`),
  router: (lab: string) => `${lab}-rtr`,
  external: (lab: string) => `${lab}-ext`,
  node: (lab: string, node: string) => `${lab}-${node}`,
  pod: (lab: string, node: string, pod: string) => `${lab}-${node}-${pod}`,
};

/** Node index n (1-based, < 245) on segment k gets 10.224.k.(10+n), and fd00:224:0:k::(10+n) in a dual-stack lab (fd00:224:: on segment 0). */
export function nodeAddress(index: number, family: Family = 4, segment = 0): string {
  if (index < 1 || index > 244) throw new Error(`cannot address node index "${index}": must be 1..244`);
  if (family === 4) return `10.224.${segment}.${10 + index}`;
  return segment === 0 ? `fd00:224::${10 + index}` : `fd00:224:0:${segment}::${10 + index}`;
}

/** Lab, node and pod names become namespace and interface names: keep them short and plain. */
export function nameProblem(name: string, max = 15): string | null {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return "must be lowercase letters, digits and inner dashes";
  if (name.length > max) return `must be at most ${max} characters`;
  return null;
}
