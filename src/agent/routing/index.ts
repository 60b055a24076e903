// Routing backends, registered in one list: `--routing NAME`. README.md: how to add one.
import { emptyReport, type RoutingBackend } from "./backend.ts";
import { hostGw } from "./hostgw.ts";
import { autoBackend } from "./auto.ts";
import { DEFAULT_VXLAN, VXLAN_SETTINGS, vxlanBackend } from "./vxlan.ts";

/** No routes to other nodes (a single node, or routes made by something else). */
const none: RoutingBackend = {
  name: "none",
  mtuOverhead: () => 0,
  ownsRoute: () => false,
  reconcile: emptyReport,
  remove: emptyReport,
};

/** The backends' own settings, by the backend that declares them (auto uses VXLAN's). */
const SETTINGS = { vxlan: VXLAN_SETTINGS } as const;

export type RoutingSettings = { -readonly [K in keyof typeof SETTINGS]: ReturnType<(typeof SETTINGS)[K]["parse"]> };

type Intersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type AllFlags = Intersection<(typeof SETTINGS)[keyof typeof SETTINGS]["flags"]>;

/** Every backend's flags, for the agent's flag table. */
export const ROUTING_FLAGS = Object.assign({}, ...Object.values(SETTINGS).map((s) => s.flags)) as AllFlags;

/** Each backend's settings from the raw values by config key (the agent's flags and config file); throws naming the key. */
export function parseRoutingSettings(raw: (key: string) => unknown): RoutingSettings {
  return Object.fromEntries(Object.entries(SETTINGS).map(([name, s]) => [name, s.parse(raw)])) as RoutingSettings;
}

export const DEFAULT_ROUTING_SETTINGS: RoutingSettings = { vxlan: DEFAULT_VXLAN };

/** Every backend, built with this node's settings (the VXLAN VNI and port). */
export function routingBackends(s: RoutingSettings = DEFAULT_ROUTING_SETTINGS) {
  const vxlan = vxlanBackend(s.vxlan);
  return { auto: autoBackend(vxlan), "host-gw": hostGw, vxlan, none } as const satisfies Record<string, RoutingBackend>;
}

export type RoutingName = keyof ReturnType<typeof routingBackends>;
export const ROUTING_NAMES = Object.keys(routingBackends()) as RoutingName[];

export { connectedSubnets, intSetting, leafBackends, type BackendSettings, type LocalAddr, type Peer, type PeerPath, type RoutingBackend, type RoutingInput, type RoutingKernel, type RoutingReport } from "./backend.ts";
export { desiredHostGwRoutes, hostGw } from "./hostgw.ts";
export { pathTo, splitPeers, autoBackend } from "./auto.ts";
export { DEFAULT_VXLAN, VXLAN_SETTINGS, desiredVxlan, vxlanPublished, kernelRelease, txChecksumBroken, vxlanBackend, type VxlanSettings } from "./vxlan.ts";
export { VXLAN_DEVICES, vtepGateway, vtepMAC, vxlanOverhead } from "./vtep.ts";
export { podMTU, podMTUMismatches, podMTUMismatchWarning, podMTUWhy, underlayMTU } from "./mtu.ts";
export { applyRouteDiff, diffRoutes, syncRoutes, type DesiredRoute, type RouteDiff } from "./routes.ts";
