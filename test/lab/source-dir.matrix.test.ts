// The lab's end-to-end suites on `--source dir` (the manifests directory, as on a standalone
// host), the combination `make test` leaves out (it runs them on the default kubernetes source:
// the lab's API server, controllers and agents reading it). The same test files, with
// MNCNI_LAB_SOURCE=dir (test/lab/lab-cli.ts adds `--source dir` to their `lab up`), set only
// while this file's tests run: the other matrix files share the process. Run by `make test-matrix`.
import { envForThisFile } from "./fast-path-labs.ts";

envForThisFile("MNCNI_LAB_SOURCE", "dir");

// Both modes here: make test runs bridge mode only, on the kubernetes source.
const { labDownSuite, labSuite } = await import("./lab-suite.ts");
labSuite("bridge");
labSuite("routed");
labDownSuite();
await import("./lab-ipv6.e2e.test.ts");
const { overlaySuite } = await import("./lab-overlay-suite.ts");
overlaySuite();
await import("./lab-readiness.e2e.test.ts");
await import("./lab-pod-mtu.e2e.test.ts");
// Both modes here: make test runs the model in bridge mode only, on the kubernetes source.
const { policyModelSuite } = await import("./policy-model-suite.ts");
policyModelSuite("bridge");
policyModelSuite("routed");
await import("./policy-examples.e2e.test.ts");
const { insightSuite } = await import("../obs/insight-suite.ts");
insightSuite("bridge");
insightSuite("routed");
