// `mncni lab` end to end (lab-suite.ts), the representative combination for `make test`: bridge
// mode on the default (kubernetes) source, and `lab down`. Routed mode runs in `make
// test-matrix` (lab-routed.matrix.test.ts), and both modes on the manifests directory too
// (source-dir.matrix.test.ts).
import { labDownSuite, labSuite } from "./lab-suite.ts";

labSuite("bridge");
labDownSuite();
