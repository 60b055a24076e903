// The wirings a lab can use, by kind (node-wiring.ts says what a wiring does).
import type { NodeWiring } from "./node-wiring.ts";
import type { WiringKind } from "./state.ts";
import { agentWiring } from "./wiring-agent.ts";
import { staticWiring } from "./wiring-static.ts";

export function wiringFor(kind: WiringKind): NodeWiring {
  return kind === "agent" ? agentWiring : staticWiring;
}
