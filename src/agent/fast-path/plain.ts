// Which pods of this node are "plain" (their traffic to each other may take the fast path),
// and for every other pod why not, as sentences: the agent fills the plain-pods map from it,
// and `inspect` / `explain` show the same reasons (one function, so they cannot disagree).
//
// A pod is plain only when the stack would do nothing to its packets that the program skips:
// no policy selects it in either direction, it is not held, conntrack translates none of its
// flows (not a Service backend: replies to a Service client are un-DNATed by the stack; no
// hostPort), its device is not shaped, and the program is attached to its device.
import { PolicyEvaluator } from "../../cluster/index.ts";
import type { ClusterState, PodInfo } from "../../cluster/types.ts";

/** What the node's kernel says of one pod's host-side device (facts.ts reads it). */
export interface PodDevice {
  hostIfname: string;
  index: number;
  /** The pod's MAC, as anti-spoofing records it. */
  podMac: string;
  /** The MAC routed packets reach the pod from (routed: the host veth's; bridge: the bridge's). */
  hostMac: string;
  /** The pod's addresses, as anti-spoofing records them. */
  ips: string[];
  /** The fast path's filter (clsact) is on the device. */
  attached: boolean;
  /** Bandwidth qdiscs are on the device. */
  shaped: boolean;
  /** hostPort elements name the device. */
  hostPort: boolean;
}

export interface PlainInputs {
  state: ClusterState;
  nodeName: string;
  /** Addresses the policy hold holds. */
  held: ReadonlySet<string>;
  /** By address (either family). */
  devices: ReadonlyMap<string, PodDevice>;
}

export interface PodFastPath {
  /** "namespace/name" */
  pod: string;
  /** The pod's first address, when it has one. */
  ip?: string;
  /** Every address of the pod (each is a key of the plain-pods map when it is plain). */
  ips: string[];
  device?: PodDevice;
  /** Empty: plain. */
  notPlain: string[];
}

const POLICY_KINDS = new Set(["Pod", "Namespace", "NetworkPolicy", "ClusterNetworkPolicy"]);

/** Service backends by address: "namespace/service" of each EndpointSlice that lists it. */
function backends(state: ClusterState): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of state.endpointSlices.values()) {
    for (const e of s.endpoints) {
      for (const a of e.addresses) {
        const list = out.get(a) ?? [];
        const svc = `${s.namespace}/${s.service || s.name}`;
        if (!list.includes(svc)) list.push(svc);
        out.set(a, list);
      }
    }
  }
  return out;
}

/** This node's pods (not host-network, not finished) with their fast-path decision, by "namespace/name". */
export function fastPathPods(i: PlainInputs): Map<string, PodFastPath> {
  const ev = new PolicyEvaluator(i.state);
  const svc = backends(i.state);
  const blind = (i.state.unknown ?? []).filter((u) => POLICY_KINDS.has(u.kind)).map((u) => u.kind);
  const out = new Map<string, PodFastPath>();
  for (const pod of i.state.pods.values()) {
    if (pod.nodeName !== i.nodeName || pod.hostNetwork || pod.phase === "Succeeded" || pod.phase === "Failed") continue;
    out.set(`${pod.namespace}/${pod.name}`, decide(pod, i, ev, svc, blind));
  }
  return out;
}

function decide(pod: PodInfo, i: PlainInputs, ev: PolicyEvaluator, svc: Map<string, string[]>, blind: string[]): PodFastPath {
  const key = `${pod.namespace}/${pod.name}`;
  const ips = pod.podIPs;
  const ip = ips[0];
  const why: string[] = [];
  if (!ip) return { pod: key, ips, notPlain: ["it has no address yet"] };
  if (blind.length) why.push(`the agent cannot read ${blind.join(", ")}: every pod takes the stack`);
  const selecting = ev.selecting(pod);
  if (selecting.length) why.push(`selected by ${[...new Set(selecting.map((s) => `${s.kind} ${s.name} (${s.direction})`))].join(", ")}`);
  if (ips.some((a) => i.held.has(a))) why.push("held until its policy is programmed");
  const services = [...new Set(ips.flatMap((a) => svc.get(a) ?? []))];
  if (services.length) why.push(`a backend of Service ${services.join(", ")} (conntrack translates its replies)`);
  const device = ips.map((a) => i.devices.get(a)).find((d) => d !== undefined);
  if (!device) why.push("no device of this node is recorded for its address (anti-spoofing)");
  else {
    if (device.hostPort) why.push(`it has a hostPort (conntrack translates its flows)`);
    if (device.shaped) why.push(`its device ${device.hostIfname} is shaped (bandwidth)`);
    if (!device.attached) why.push(`the program is not attached to its device ${device.hostIfname}`);
  }
  return { pod: key, ip, ips, ...(device ? { device } : {}), notPlain: why };
}
