// Traffic through the lab's Services in the other lab shapes (make test-matrix): routed mode
// over VXLAN dual-stack, routed over host-gw, and bridge mode across two underlay segments
// (VXLAN between them), and the agents (and the lab's DNS) on the manifests directory instead of
// the lab's API server. make test runs bridge, dual-stack (lab-services.e2e.test.ts).
import { serviceTrafficSuite } from "./lab-services-suite.ts";

serviceTrafficSuite({ mode: "routed", routing: "vxlan", ipv6: true });
serviceTrafficSuite({ mode: "routed", routing: "host-gw", ipv6: false });
serviceTrafficSuite({ mode: "bridge", routing: "auto", ipv6: false, segments: 2 });
serviceTrafficSuite({ mode: "bridge", routing: "host-gw", ipv6: false, source: "dir" });
