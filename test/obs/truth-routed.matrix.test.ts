// inspect on a lab broken on purpose (truth-suite.ts) in routed mode: the combination `make test`
// leaves out (it runs bridge mode). Run by `make test-matrix`.
import { inspectBrokenSuite } from "./truth-suite.ts";

inspectBrokenSuite("routed");
