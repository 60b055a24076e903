// The policy attacks (policy-attack-suite.ts), the representative combination for `make test`:
// bridge mode, where the link-local bypass and the lost neighbour discovery were. Routed mode
// runs in `make test-matrix` (policy-attack.matrix.test.ts).
import { policyAttackSuite } from "./policy-attack-suite.ts";

policyAttackSuite("bridge");
