// The existing end-to-end suites with the eBPF fast path on (fast-path-labs.ts), in routed
// mode; fast-path-suites-bridge.matrix.test.ts runs them in bridge mode and
// fast-path-overlay.matrix.test.ts the overlay's (three files, so that none is long). The fast
// path must change nothing they see:
//   lab end to end (lab-suite.ts): bring-up, lab check, ...
//   the upstream NetworkPolicy model, ClusterNetworkPolicy (policy-model-suite.ts)
//   docs/policy.md's examples (policy-examples-suite.ts)
//   Services (lab-services-suite.ts), over host-gw and dual-stack: the cross-node fast path
//   insight: inspect, explain (a forged source dropped by anti-spoofing), trace (insight-suite.ts)
//   overlay (lab-overlay-suite.ts, in its own file): auto/bridge and vxlan/routed, where
//     the VXLAN peers take the stack
// The labs route host-gw (the default within one segment), so the cross-node fast path is on
// in all but the overlay's.
import { setDefaultTimeout } from "bun:test";
import { fastPathLabs } from "./fast-path-labs.ts";

fastPathLabs();
const { labSuite } = await import("./lab-suite.ts");
labSuite("routed");
const { policyModelSuite } = await import("./policy-model-suite.ts");
policyModelSuite("routed");
const { policyExamplesSuite } = await import("./policy-examples-suite.ts");
policyExamplesSuite("routed");
const { serviceTrafficSuite } = await import("./lab-services-suite.ts");
// Its module sets this only where it is first imported (a module is evaluated once per process).
setDefaultTimeout(180_000);
serviceTrafficSuite({ mode: "routed", routing: "host-gw", ipv6: true });
const { insightSuite } = await import("../obs/insight-suite.ts");
insightSuite("routed");
