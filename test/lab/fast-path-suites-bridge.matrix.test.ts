// The existing end-to-end suites with the eBPF fast path on, in bridge mode: the list and
// why is in fast-path-suites.matrix.test.ts (routed mode; the overlay: fast-path-overlay.matrix.test.ts).
import { setDefaultTimeout } from "bun:test";
import { fastPathLabs } from "./fast-path-labs.ts";

fastPathLabs();
const { labSuite } = await import("./lab-suite.ts");
labSuite("bridge");
const { policyModelSuite } = await import("./policy-model-suite.ts");
policyModelSuite("bridge");
const { policyExamplesSuite } = await import("./policy-examples-suite.ts");
policyExamplesSuite("bridge");
const { serviceTrafficSuite } = await import("./lab-services-suite.ts");
// Its module sets this only where it is first imported (a module is evaluated once per process).
setDefaultTimeout(180_000);
serviceTrafficSuite({ mode: "bridge", routing: "host-gw", ipv6: true });
const { insightSuite } = await import("../obs/insight-suite.ts");
insightSuite("bridge");
