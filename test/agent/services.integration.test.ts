// The Service proxy end to end, the representative combination of `make test`: bridge mode,
// host-gw routing, IPv4 (the others: services.matrix.test.ts). See services-suite.ts.
import { servicesSuite } from "./services-suite.ts";

servicesSuite({ mode: "bridge" });
