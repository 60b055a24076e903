// The existing end-to-end suites with the eBPF fast path on, in routed mode (the list:
// fastPathSuites in fast-path-labs.ts); fast-path-suites-bridge.matrix.test.ts runs them in
// bridge mode and fast-path-overlay.matrix.test.ts the overlay's, where the VXLAN peers take
// the stack (three files, so that none is long).
import { fastPathSuites } from "./fast-path-labs.ts";

await fastPathSuites("routed");
