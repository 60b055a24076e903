// The upstream NetworkPolicy model in the lab (policy-model-suite.ts), the representative
// combination for `make test`: bridge mode on the default (kubernetes) source. Routed mode runs
// in `make test-matrix` (policy-model-routed.matrix.test.ts), and both modes on the manifests
// directory too (source-dir.matrix.test.ts).
import { policyModelSuite } from "./policy-model-suite.ts";

policyModelSuite("bridge");
