// The policy attacks (policy-attack-suite.ts) in routed mode: the combination `make test`
// leaves out (it runs bridge mode). Run by `make test-matrix`.
import { policyAttackSuite } from "./policy-attack-suite.ts";

policyAttackSuite("routed");
