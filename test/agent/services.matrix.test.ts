// The Service proxy end to end in the other combinations (`make test-matrix`): routed mode,
// VXLAN, dual-stack. See services-suite.ts.
import { servicesSuite } from "./services-suite.ts";

servicesSuite({ mode: "routed" });
servicesSuite({ mode: "bridge", routing: "vxlan", dualStack: true });
servicesSuite({ mode: "routed", routing: "vxlan", dualStack: true });
