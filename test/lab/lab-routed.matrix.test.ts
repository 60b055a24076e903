// `mncni lab` end to end (lab-suite.ts) in routed mode, on the default (kubernetes) source: the
// combination `make test` leaves out (it runs bridge mode). Run by `make test-matrix`.
import { labSuite } from "./lab-suite.ts";

labSuite("routed");
