// Policy enforcement for real (policy-suite.ts), the representative combinations for `make
// test`: each mode once and each source once — bridge mode on the Kubernetes source (the API
// under deploy/'s RBAC), routed mode on the manifests directory. policy.matrix.test.ts runs
// the other two (`make test-matrix`).
import { policySuite } from "./policy-suite.ts";

policySuite("bridge", "kubernetes");
policySuite("routed", "directory");
