// Matrix files that run existing suites under another setting of `lab up` (an environment
// variable test/lab/lab-cli.ts adds to every `lab up`): set only while that file's tests run,
// as the matrix files share one bun process.
import { afterAll, beforeAll } from "bun:test";
import { downAll } from "./lab-cli.ts";

/** Sets `name` while the calling file's tests run, and puts it back after. */
export function envForThisFile(name: string, value: string): void {
  const before = process.env[name];
  beforeAll(() => {
    process.env[name] = value;
  });
  afterAll(() => {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  });
}

/**
 * `lab up --fast-path on` for every lab the calling file brings up (MNCNI_LAB_FAST_PATH).
 * Every lab still up goes at the end of the file: a suite module's own file-level afterAll
 * (insight-suite.ts) is registered only in the first file of the process that imports it.
 */
export function fastPathLabs(): void {
  envForThisFile("MNCNI_LAB_FAST_PATH", "on");
  afterAll(downAll);
}

/**
 * The existing end-to-end suites in one mode with the fast path on; the fast path must change
 * nothing they see:
 *   lab end to end (lab-suite.ts): bring-up, lab check, ...
 *   the upstream NetworkPolicy model, ClusterNetworkPolicy (policy-model-suite.ts)
 *   docs/policy.md's examples (policy-examples-suite.ts)
 *   Services (lab-services-suite.ts), over host-gw and dual-stack: the cross-node fast path
 *   insight: inspect, explain (a forged source dropped by anti-spoofing), trace (insight-suite.ts)
 * The labs route host-gw (the default within one segment), so the cross-node fast path is on.
 */
export async function fastPathSuites(mode: "bridge" | "routed"): Promise<void> {
  fastPathLabs();
  (await import("./lab-suite.ts")).labSuite(mode);
  (await import("./policy-model-suite.ts")).policyModelSuite(mode);
  (await import("./policy-examples-suite.ts")).policyExamplesSuite(mode);
  (await import("./lab-services-suite.ts")).serviceTrafficSuite({ mode, routing: "host-gw", ipv6: true });
  (await import("../obs/insight-suite.ts")).insightSuite(mode);
}
