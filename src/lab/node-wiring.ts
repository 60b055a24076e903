// How a node gets its CNI config, host-gw routes and masquerade. Normally the mncni agent does
// it (agent wiring, wiring-agent.ts). Static wiring (wiring-static.ts) is the lab doing it
// itself with the Go reference plugins: a baseline, and a way to run the lab where the agent
// cannot run. wiring.ts picks one by kind.
import type { LabState, NodeState, WiringKind } from "./state.ts";

export interface NodeWiring {
  readonly kind: WiringKind;
  /** Makes the node able to serve ADD: resolves once its CNI config is in place. */
  start(s: LabState, node: NodeState): Promise<void>;
  /** Brings every node's routes to the cluster's current set of nodes. */
  converge(s: LabState): Promise<void>;
  stop(s: LabState, node: NodeState): Promise<void>;
}
