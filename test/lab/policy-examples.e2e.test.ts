// The policy examples of docs/policy.md in a bridge-mode lab (policy-examples-suite.ts).
import { policyExamplesSuite } from "./policy-examples-suite.ts";

policyExamplesSuite("bridge");
