// Routing backends, registered in one list: `--routing NAME`. README.md: how to add one.
import { emptyReport, type RoutingBackend } from "./backend.ts";
import { hostGw } from "./hostgw.ts";

/** No routes to other nodes (a single node, or routes made by something else). */
const none: RoutingBackend = {
  name: "none",
  mtuOverhead: () => 0,
  ownsRoute: () => false,
  reconcile: emptyReport,
  remove: emptyReport,
};

export const ROUTING_BACKENDS = { "host-gw": hostGw, none } as const satisfies Record<string, RoutingBackend>;
export type RoutingName = keyof typeof ROUTING_BACKENDS;
export const ROUTING_NAMES = Object.keys(ROUTING_BACKENDS) as RoutingName[];

export { connectedSubnets, type LocalAddr, type Peer, type RoutingBackend, type RoutingInput, type RoutingKernel, type RoutingReport } from "./backend.ts";
export { desiredHostGwRoutes, hostGw } from "./hostgw.ts";
export { applyRouteDiff, diffRoutes, syncRoutes, type DesiredRoute, type RouteDiff } from "./routes.ts";
