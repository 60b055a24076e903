// The existing end-to-end suites with the eBPF fast path on (`lab up --fast-path on`: every
// lab these files bring up, through MNCNI_LAB_FAST_PATH, which test/lab/lab-cli.ts adds to their
// `lab up`; set only while this file's tests run, as the other matrix files share the process).
// The fast path must change nothing they see. One mode per suite, alternating, to keep the
// added time of make test-matrix down (each suite runs in its other modes elsewhere):
//   lab end to end (lab-suite.ts)            routed
//   the upstream NetworkPolicy model         bridge
//   docs/policy.md's examples                bridge (the file's own lab)
//   Services (lab-services-suite.ts)         routed over host-gw, dual-stack (cross-node fast path)
//   overlay (lab-overlay.e2e.test.ts)        the file's own: auto/bridge and vxlan/routed
//   insight (inspect, explain, trace...)     bridge
// The labs route host-gw (the default within one segment), so the cross-node fast path is on
// in all but the overlay's, where the VXLAN peers take the stack.
import { afterAll, beforeAll } from "bun:test";

const before = process.env.MNCNI_LAB_FAST_PATH;
beforeAll(() => {
  process.env.MNCNI_LAB_FAST_PATH = "on";
});
afterAll(() => {
  if (before === undefined) delete process.env.MNCNI_LAB_FAST_PATH;
  else process.env.MNCNI_LAB_FAST_PATH = before;
});

const { labSuite } = await import("./lab-suite.ts");
labSuite("routed");
const { policyModelSuite } = await import("./policy-model-suite.ts");
policyModelSuite("bridge");
await import("./policy-examples.e2e.test.ts");
const { serviceTrafficSuite } = await import("./lab-services-suite.ts");
serviceTrafficSuite({ mode: "routed", routing: "host-gw", ipv6: true });
await import("./lab-overlay.e2e.test.ts");
const { insightSuite } = await import("../obs/insight-suite.ts");
insightSuite("bridge");
