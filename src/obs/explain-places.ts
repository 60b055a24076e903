// What `mncni explain` on a node can name: the node's own namespace ("node") and its pods
// (namespace/name, an address or a container ID), from its attachments. An address of no
// known place is outside (the path stops where it leaves). The lab's places: src/lab/places.ts.
import { addrOf } from "../net/ip.ts";
import { findAttachment, type NodeAttachments } from "./attachments.ts";
import type { Endpoint, Place } from "./explain.ts";
import type { NodeView } from "../cni/node-view.ts";

/** A pod's address of the family asked for (the other one when it has none: the error then names it). */
export const pickAddr = (addrs: string[], v6: boolean): string => addrOf(addrs.find((x) => x.includes(":") === v6) ?? addrs[0]!);

export interface NodePlaces {
  node: Place;
  /** The node first, then every pod with a namespace and an address. */
  places: Place[];
  attachments: NodeAttachments["attachments"];
}

export function nodePlaces(v: NodeView, n: NodeAttachments): NodePlaces {
  const node: Place = { name: v.name, kind: "node", ...(v.netns ? { netns: v.netns } : {}) };
  const pods = n.attachments.filter((a) => a.netns && a.podAddresses.length);
  const places: Place[] = [
    node,
    ...pods.map((a) => ({ name: a.podName ? `${a.podNamespace}/${a.podName}` : a.containerId.slice(0, 12), netns: a.netns!, kind: "pod" as const, node: v.name, ...(a.hostVeth ? { hostVeth: a.hostVeth.name } : {}) })),
  ];
  return { node, places, attachments: pods };
}

/** "node", a pod of the node, or an address; undefined when `what` is none of them. */
export function nodeEndpoint(p: NodePlaces, what: string, v6: boolean): Endpoint | undefined {
  if (what === "node") return { place: p.node, ip: "" };
  const a = findAttachment(p.attachments, what);
  if (a) return { place: p.places.find((pl) => pl.netns === a.netns)!, ip: pickAddr(a.podAddresses, v6) };
  if (/^[0-9a-f.:]+$/i.test(what)) return { ip: what };
  return undefined;
}
