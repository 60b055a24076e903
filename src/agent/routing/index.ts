// Routing backends, registered in one list: `--routing NAME`. README.md: how to add one.
import { emptyReport, type RoutingBackend } from "./backend.ts";
import { hostGw } from "./hostgw.ts";
import { autoBackend } from "./auto.ts";
import { DEFAULT_VXLAN, vxlanBackend, type VxlanSettings } from "./vxlan.ts";

/** No routes to other nodes (a single node, or routes made by something else). */
const none: RoutingBackend = {
  name: "none",
  mtuOverhead: () => 0,
  ownsRoute: () => false,
  reconcile: emptyReport,
  remove: emptyReport,
};

export interface RoutingSettings {
  vxlan: VxlanSettings;
}

/** Every backend, built with this node's settings (the VXLAN VNI and port). */
export function routingBackends(s: RoutingSettings = { vxlan: DEFAULT_VXLAN }) {
  const vxlan = vxlanBackend(s.vxlan);
  return { auto: autoBackend(vxlan), "host-gw": hostGw, vxlan, none } as const satisfies Record<string, RoutingBackend>;
}

export type RoutingName = keyof ReturnType<typeof routingBackends>;
export const ROUTING_NAMES = Object.keys(routingBackends()) as RoutingName[];

export { connectedSubnets, type LocalAddr, type Peer, type PeerPath, type RoutingBackend, type RoutingInput, type RoutingKernel, type RoutingReport } from "./backend.ts";
export { desiredHostGwRoutes, hostGw } from "./hostgw.ts";
export { pathTo, splitPeers, autoBackend } from "./auto.ts";
export { DEFAULT_VXLAN, desiredVxlan, kernelRelease, txChecksumBroken, vxlanBackend, type VxlanSettings } from "./vxlan.ts";
export { VXLAN_DEVICES, vtepGateway, vtepMAC, vxlanOverhead } from "./vtep.ts";
export { podMTU, podMTUMismatches, podMTUMismatchWarning, underlayMTU } from "./mtu.ts";
export { applyRouteDiff, diffRoutes, syncRoutes, type DesiredRoute, type RouteDiff } from "./routes.ts";
