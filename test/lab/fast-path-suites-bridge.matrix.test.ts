// The existing end-to-end suites with the eBPF fast path on, in bridge mode: the list and
// why is in fast-path-suites.matrix.test.ts (routed mode and the overlay's two labs).
import { fastPathLabs } from "./fast-path-labs.ts";

fastPathLabs();
const { labSuite } = await import("./lab-suite.ts");
labSuite("bridge");
const { policyModelSuite } = await import("./policy-model-suite.ts");
policyModelSuite("bridge");
const { policyExamplesSuite } = await import("./policy-examples-suite.ts");
policyExamplesSuite("bridge");
const { serviceTrafficSuite } = await import("./lab-services-suite.ts");
serviceTrafficSuite({ mode: "bridge", routing: "host-gw", ipv6: true });
const { insightSuite } = await import("../obs/insight-suite.ts");
insightSuite("bridge");
