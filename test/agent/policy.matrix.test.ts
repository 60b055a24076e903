// Policy enforcement for real (policy-suite.ts), the mode x source combinations `make test`
// leaves out (it runs bridge/kubernetes and routed/directory): bridge mode on the manifests
// directory, routed mode on the Kubernetes source. Run by `make test-matrix`.
import { policySuite } from "./policy-suite.ts";

policySuite("bridge", "directory");
policySuite("routed", "kubernetes");
