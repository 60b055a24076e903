// The upstream NetworkPolicy model in the lab (policy-model-suite.ts) in routed mode, on the
// default (kubernetes) source: the combination `make test` leaves out (it runs bridge mode).
// Run by `make test-matrix`.
import { policyModelSuite } from "./policy-model-suite.ts";

policyModelSuite("routed");
