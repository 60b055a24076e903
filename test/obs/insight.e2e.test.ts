// The insight commands against a lab (insight-suite.ts), the representative combination for
// `make test`: bridge mode on the default (kubernetes) source. Routed mode runs in `make
// test-matrix` (insight-routed.matrix.test.ts), and both modes on the manifests directory too
// (test/lab/source-dir.matrix.test.ts).
import { insightSuite } from "./insight-suite.ts";

insightSuite("bridge");
