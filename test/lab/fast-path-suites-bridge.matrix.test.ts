// The existing end-to-end suites with the eBPF fast path on, in bridge mode: the list and why
// are in fast-path-labs.ts (fastPathSuites); routed mode: fast-path-suites.matrix.test.ts.
import { fastPathSuites } from "./fast-path-labs.ts";

await fastPathSuites("bridge");
