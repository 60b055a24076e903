// The insight tools on labs broken on purpose (truth-suite.ts), for `make test`: inspect in bridge
// mode, and every explain case. inspect in routed mode runs in `make test-matrix`
// (truth-routed.matrix.test.ts).
import { explainBrokenSuites, inspectBrokenSuite } from "./truth-suite.ts";

inspectBrokenSuite("bridge");
explainBrokenSuites();
